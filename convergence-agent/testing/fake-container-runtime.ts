/**
 * An in-memory ContainerRuntime for the planner's, executor's and loop's tests. It keeps the
 * engine facts docker would (state, exit code, start and finish times, published ports and
 * address only while running) and the same error codes as docker.ts: DROVER_DOCKER_CONFLICT
 * for a taken name, removing a running container or exec in a stopped one;
 * DROVER_DOCKER_NOT_FOUND for a missing container; DROVER_DOCKER_FAILED for a missing bind
 * source. It passes container-runtime.contract.ts, as the dockerode adapter does.
 */
import { DroverError } from '#common/errors.ts';
import type { ContainerRuntime, ExecResult, RuntimeContainer } from '../container-runtime.ts';
import type { GateMount } from '../gate/gates.ts';
import { LABEL_GATE, LABEL_NODE } from '../plan/labels.ts';
import type { ContainerSpec } from '../plan/types.ts';

const FAKE_ADDRESS = '172.17.0.2';
/** A stopped container has neither published ports nor an address (docker clears both). */
const unplugged = (): Pick<RuntimeContainer, 'published' | 'ipAddress'> => ({ published: [], ipAddress: null });

type Operation = 'createAndStart' | 'restart' | 'stop' | 'remove' | 'exec' | 'listContainers';

export class FakeContainerRuntime implements ContainerRuntime {
  readonly containers = new Map<string, RuntimeContainer & { spec: ContainerSpec }>();
  /** Calls made, in order: `<operation> <name>`. */
  readonly calls: string[] = [];
  /** Exit code of an exec; by default 0. */
  execHandler: (containerId: string, command: string[]) => number | Promise<number> = () => 0;
  /** Whether a bind source exists; by default every one does (tests name paths that are not on disk). */
  bindSourceExists: (source: string) => boolean = () => true;
  private failures = new Map<string, DroverError>();
  private nextId = 1;
  private nextPort = 32768;

  constructor(private readonly now: () => number = () => Date.now()) {}

  /** The next call of `operation` (on `name`, when given) throws `error`. */
  failNext(operation: Operation, error = new DroverError('DROVER_DOCKER_FAILED', `${operation} failed (fake)`), name?: string): void {
    this.failures.set(name ? `${operation} ${name}` : operation, error);
  }

  /** The container's process ends on its own with `exitCode`. */
  crash(name: string, exitCode = 137): void {
    const c = this.byName(name);
    if (!c) throw new Error(`no container ${name}`);
    Object.assign(c, { running: false, status: 'exited', exitCode, finishedAt: this.now(), ...unplugged() });
  }

  byName(name: string): (RuntimeContainer & { spec: ContainerSpec }) | undefined {
    return [...this.containers.values()].find((c) => c.name === name);
  }

  async listContainers(nodeUuid: string): Promise<RuntimeContainer[]> {
    this.maybeFail('listContainers', '');
    return [...this.containers.values()]
      .filter((c) => c.labels[LABEL_NODE] === nodeUuid)
      .map(({ spec: _spec, ...c }) => structuredClone(c));
  }

  async createAndStart(spec: ContainerSpec, gate?: GateMount): Promise<void> {
    this.calls.push(`createAndStart ${spec.name}${gate ? ' (gated)' : ''}`);
    this.maybeFail('createAndStart', spec.name);
    if (this.byName(spec.name)) throw new DroverError('DROVER_DOCKER_CONFLICT', `name ${spec.name} is taken`, { retryable: true });
    const missing = spec.binds.find((b) => !this.bindSourceExists(b.source));
    if (missing) throw new DroverError('DROVER_DOCKER_FAILED', `create container: bind source path does not exist: ${missing.source}`);
    const id = `fake${String(this.nextId++).padStart(8, '0')}`;
    this.containers.set(id, {
      id,
      name: spec.name,
      image: spec.image,
      labels: { ...spec.labels, ...(gate ? { [LABEL_GATE]: gate.id } : {}) },
      status: 'running',
      running: true,
      exitCode: 0,
      oomKilled: false,
      startedAt: this.now(),
      finishedAt: null,
      mountSources: spec.binds.map((b) => b.source),
      published: this.publish(spec),
      ipAddress: FAKE_ADDRESS,
      spec,
    });
  }

  async restart(containerId: string): Promise<void> {
    const c = this.must(containerId);
    this.record('restart', c.name);
    // Docker picks host ports anew at every start.
    Object.assign(c, { running: true, status: 'running', exitCode: 0, startedAt: this.now(), published: this.publish(c.spec), ipAddress: FAKE_ADDRESS });
  }

  async stopProcesses(containerId: string): Promise<void> {
    await this.stop(containerId);
  }

  async stop(containerId: string): Promise<void> {
    const c = this.must(containerId);
    this.record('stop', c.name);
    if (!c.running) return;
    Object.assign(c, { running: false, status: 'exited', exitCode: 143, finishedAt: this.now(), ...unplugged() });
  }

  async remove(containerId: string): Promise<void> {
    const c = this.containers.get(containerId);
    if (!c) return;
    this.record('remove', c.name);
    if (c.running) throw new DroverError('DROVER_DOCKER_CONFLICT', `container ${c.name} is running`, { retryable: true });
    this.containers.delete(containerId);
  }

  async exec(containerId: string, command: string[]): Promise<ExecResult> {
    const c = this.must(containerId);
    this.maybeFail('exec', c.name);
    if (!c.running) throw new DroverError('DROVER_DOCKER_CONFLICT', `container ${c.name} is not running`, { retryable: true });
    return { exitCode: await this.execHandler(containerId, command) };
  }

  private publish(spec: ContainerSpec): RuntimeContainer['published'] {
    const tcp: RuntimeContainer['published'] = spec.ports.map((internal) => ({ internal, host: spec.hostIp, host_port: this.nextPort++ }));
    return [
      ...tcp,
      ...(spec.udpPorts ?? []).map((internal) => ({ internal, host: spec.hostIp, host_port: this.nextPort++, protocol: 'udp' as const })),
    ].sort((a, b) => a.internal - b.internal || (a.protocol ?? '').localeCompare(b.protocol ?? ''));
  }

  private record(operation: Operation, name: string): void {
    this.calls.push(`${operation} ${name}`);
    this.maybeFail(operation, name);
  }

  private maybeFail(operation: Operation, name: string): void {
    for (const key of [`${operation} ${name}`, operation]) {
      const error = this.failures.get(key);
      if (error) {
        this.failures.delete(key);
        throw error;
      }
    }
  }

  private must(containerId: string): RuntimeContainer & { spec: ContainerSpec } {
    const c = this.containers.get(containerId);
    if (!c) throw new DroverError('DROVER_DOCKER_NOT_FOUND', `no container ${containerId}`);
    return c;
  }
}

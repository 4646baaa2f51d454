/**
 * The dockerode adapter (the only file that imports dockerode): implements ContainerRuntime
 * against one dockerd, and classifies dockerode's errors into DroverErrors once, here.
 *
 * Facts it relies on (checked against Docker 20.10): the API version is pinned to
 * v1.41; 304 on start/stop means "already"; `HostPort: ''` lets docker pick a host port,
 * read back with inspect; `Mounts` of type bind fail on a missing source where `Binds` would
 * quietly create an empty directory (and the application would write beside its dataset).
 * Docker's own restart policy is always `no`: drover restarts containers itself.
 */
import { constants as osConstants } from 'node:os';
import Docker from 'dockerode';
import { systemClock } from '#common/clock.ts';
import { DroverError } from '#common/errors.ts';
import type { ContainerRuntime, ExecResult, RuntimeContainer } from './container-runtime.ts';
import type { GateMount } from './gate/gates.ts';
import { GATE_DIR_IN_CONTAINER, GATE_SHELL_IN_CONTAINER, applicationArgv, gatedCommand } from './gate/gate-script.ts';
import { LABEL_APP, LABEL_GATE, LABEL_NODE } from './plan/labels.ts';
import { inNamespace, namespaceEmptied, pidNamespaceOf, signalled, type StopSignal } from './process-namespace.ts';
import type { ContainerSpec } from './plan/types.ts';

export interface DockerRuntimeOptions {
  socketPath: string;
  /** Per-call limit for ordinary calls; a stop adds its own grace period. */
  callTimeoutMs?: number;
  pullTimeoutMs?: number;
}

const NEVER = '0001-01-01T00:00:00Z';

interface MountSettings {
  Type: 'bind';
  Source: string;
  Target: string;
  ReadOnly?: boolean;
  BindOptions?: { Propagation: 'rslave' };
}

export class DockerRuntime implements ContainerRuntime {
  private readonly docker: Docker;
  private readonly callTimeoutMs: number;
  private readonly pullTimeoutMs: number;

  constructor(options: DockerRuntimeOptions) {
    this.docker = new Docker({ socketPath: options.socketPath, version: 'v1.41' });
    this.callTimeoutMs = options.callTimeoutMs ?? 30_000;
    this.pullTimeoutMs = options.pullTimeoutMs ?? 300_000;
  }

  async listContainers(nodeUuid: string): Promise<RuntimeContainer[]> {
    const summaries = await call('list containers', () =>
      this.docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${nodeUuid}`] }, abortSignal: this.signal() }),
    );
    // Inspected side by side: discovery runs every pass, and during a migration every pass is downtime.
    const inspected = await Promise.all(
      summaries.map(async (summary) => {
        try {
          return toRuntimeContainer(await call('inspect container', () => this.docker.getContainer(summary.Id).inspect({ abortSignal: this.signal() })));
        } catch (err) {
          // Removed between list and inspect: it is simply gone.
          if (err instanceof DroverError && err.code === 'DROVER_DOCKER_NOT_FOUND') return null;
          throw err;
        }
      }),
    );
    return inspected.filter((c): c is RuntimeContainer => c !== null);
  }

  async createAndStart(spec: ContainerSpec, gate?: GateMount): Promise<void> {
    const image = await this.ensureImage(spec.image);
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const port of spec.ports) {
      exposed[`${port}/tcp`] = {};
      bindings[`${port}/tcp`] = [{ HostIp: spec.hostIp, HostPort: '' }];
    }
    for (const port of spec.udpPorts ?? []) {
      exposed[`${port}/udp`] = {};
      bindings[`${port}/udp`] = [{ HostIp: spec.hostIp, HostPort: '' }];
    }
    // The ports the image EXPOSEs are published too (on the node's address, a host port Docker
    // picks): Compose reaches `db:5432` without a declaration, and so do drover's name routes,
    // which learn them from what the container publishes (docs/DESIGN.md §21).
    for (const key of Object.keys(image.Config.ExposedPorts ?? {})) {
      if (!/^\d+\/(tcp|udp)$/.test(key) || bindings[key] !== undefined) continue;
      bindings[key] = [{ HostIp: spec.hostIp, HostPort: '' }];
    }
    let command: { Cmd?: string[]; Entrypoint?: string[] } = {
      ...(spec.command ? { Cmd: spec.command } : {}),
      ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
    };
    const mounts: MountSettings[] = spec.binds.map((b) => ({ Type: 'bind', Source: b.source, Target: b.target, ...(b.readOnly ? { ReadOnly: true } : {}) }));
    const o = spec.options ?? {};
    const labels = { ...spec.labels };
    if (gate) {
      const argv = applicationArgv({ entrypoint: spec.entrypoint, cmd: spec.command }, { entrypoint: argvOf(image.Config.Entrypoint), cmd: argvOf(image.Config.Cmd) });
      const gated = gatedCommand(argv);
      command = { Entrypoint: gated.entrypoint, Cmd: gated.cmd };
      // The dataset is mounted on the host after the container started: rslave brings it in.
      for (const m of mounts) m.BindOptions = { Propagation: 'rslave' };
      mounts.push({ Type: 'bind', Source: gate.hostDir, Target: GATE_DIR_IN_CONTAINER, ReadOnly: true });
      mounts.push({ Type: 'bind', Source: gate.shell, Target: GATE_SHELL_IN_CONTAINER, ReadOnly: true });
      labels[LABEL_GATE] = gate.id;
    }
    // Files that travel with the application (docs/DESIGN.md §22), written by the agent before: read-only, no propagation.
    for (const f of spec.files ?? []) mounts.push({ Type: 'bind', Source: f.source, Target: f.target, ReadOnly: true });
    for (const b of o.hostBinds ?? []) mounts.push({ Type: 'bind', Source: b.source, Target: b.target, ReadOnly: true });
    const container = await call('create container', () =>
      this.docker.createContainer({
        name: spec.name,
        Image: spec.image,
        ...command,
        Env: spec.env,
        Labels: labels,
        ExposedPorts: exposed,
        ...(o.hostname !== undefined ? { Hostname: o.hostname } : {}),
        ...(o.user !== undefined ? { User: o.user } : {}),
        ...(o.workingDir !== undefined ? { WorkingDir: o.workingDir } : {}),
        ...(o.stopSignal !== undefined ? { StopSignal: o.stopSignal } : {}),
        // Read back by stop(): the container's own grace period wins over the agent's default.
        ...(o.stopGraceSeconds !== undefined ? { StopTimeout: o.stopGraceSeconds } : {}),
        ...(o.tty !== undefined ? { Tty: o.tty } : {}),
        ...(o.openStdin !== undefined ? { OpenStdin: o.openStdin } : {}),
        ...(o.domainname !== undefined ? { Domainname: o.domainname } : {}),
        HostConfig: {
          PortBindings: bindings,
          // Service discovery by name (docs/DESIGN.md §21): each peer's name → its address on this node's proxy.
          ...(spec.extraHosts !== undefined || o.extraHosts !== undefined ? { ExtraHosts: [...(spec.extraHosts ?? []), ...(o.extraHosts ?? [])] } : {}),
          ...(o.dns !== undefined ? { Dns: o.dns } : {}),
          ...(o.dnsSearch !== undefined ? { DnsSearch: o.dnsSearch } : {}),
          ...(o.dnsOptions !== undefined ? { DnsOptions: o.dnsOptions } : {}),
          ...(o.sysctls !== undefined ? { Sysctls: o.sysctls } : {}),
          ...(o.securityOpt !== undefined ? { SecurityOpt: o.securityOpt } : {}),
          ...(o.groupAdd !== undefined ? { GroupAdd: o.groupAdd } : {}),
          ...(o.oomScoreAdj !== undefined ? { OomScoreAdj: o.oomScoreAdj } : {}),
          ...(o.cpusetCpus !== undefined ? { CpusetCpus: o.cpusetCpus } : {}),
          ...(o.ipcMode !== undefined ? { IpcMode: o.ipcMode } : {}),
          ...(o.memoryReservationBytes !== undefined ? { MemoryReservation: o.memoryReservationBytes } : {}),
          ...(o.memorySwapBytes !== undefined ? { MemorySwap: o.memorySwapBytes } : {}),
          ...(o.pidsLimit !== undefined ? { PidsLimit: o.pidsLimit } : {}),
          Mounts: mounts,
          RestartPolicy: { Name: 'no' },
          ...(spec.memoryBytes !== null ? { Memory: spec.memoryBytes } : {}),
          ...(spec.cpuShares !== null ? { CpuShares: spec.cpuShares } : {}),
          ...(spec.swappiness !== null ? { MemorySwappiness: spec.swappiness } : {}),
          ...(o.capAdd !== undefined ? { CapAdd: o.capAdd } : {}),
          ...(o.capDrop !== undefined ? { CapDrop: o.capDrop } : {}),
          ...(o.readOnly !== undefined ? { ReadonlyRootfs: o.readOnly } : {}),
          ...(o.tmpfs !== undefined ? { Tmpfs: o.tmpfs } : {}),
          ...(o.init !== undefined ? { Init: o.init } : {}),
          ...(o.shmSizeBytes !== undefined ? { ShmSize: o.shmSizeBytes } : {}),
          ...(o.ulimits !== undefined ? { Ulimits: o.ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })) } : {}),
          ...(o.logging !== undefined ? { LogConfig: { Type: o.logging.driver, Config: o.logging.options } } : {}),
        },
        abortSignal: this.signal(),
      }),
    );
    await call('start container', () => container.start({ abortSignal: this.signal() }), { okStatus: [304] });
  }

  async restart(containerId: string, stopTimeoutSeconds: number): Promise<void> {
    const t = await this.graceOf(containerId, stopTimeoutSeconds);
    await call('restart container', () => this.docker.getContainer(containerId).restart({ t, abortSignal: this.signal(t) }));
  }

  /** Freezes the container's processes (the cgroup freezer): replication/snapshot-freeze.ts. */
  async pause(containerId: string): Promise<void> {
    await call('pause container', () => this.docker.getContainer(containerId).pause({ abortSignal: this.signal() }));
  }

  /**
   * Thaws a paused container. Docker answers 409 for one that is not paused and 404 for one
   * that is gone: both are thawed as far as a freeze is concerned.
   */
  async unpause(containerId: string): Promise<void> {
    await call('unpause container', () => this.docker.getContainer(containerId).unpause({ abortSignal: this.signal() }), { okStatus: [404, 409] });
  }

  /**
   * Stops with the container's stop signal (Docker sends its `StopSignal`) and its own grace
   * period (`StopTimeout`, Compose's `stop_grace_period`) when it has one, else `stopTimeoutSeconds`.
   */
  async stop(containerId: string, stopTimeoutSeconds: number): Promise<void> {
    await this.stopWithin(containerId, await this.graceOf(containerId, stopTimeoutSeconds));
  }

  private async stopWithin(containerId: string, stopTimeoutSeconds: number): Promise<void> {
    await call(
      'stop container',
      () => this.docker.getContainer(containerId).stop({ t: stopTimeoutSeconds, abortSignal: this.signal(stopTimeoutSeconds) }),
      { okStatus: [304] },
    );
  }

  /** What prepareStop read, per container: used once, and only while `pid` is still its first process. */
  private readonly preparedStops = new Map<string, { pid: number; ns: string; grace: number; signal: StopSignal | null }>();

  async prepareStop(containerId: string, stopTimeoutSeconds: number): Promise<void> {
    const info = await call('inspect container', () => this.docker.getContainer(containerId).inspect({ abortSignal: this.signal() }));
    const ns = info.State.Running ? await pidNamespaceOf(info.State.Pid) : null;
    if (ns === null) this.preparedStops.delete(containerId);
    else this.preparedStops.set(containerId, { pid: info.State.Pid, ns, grace: graceIn(info, stopTimeoutSeconds), signal: stopSignalOf(info) });
  }

  async stopProcesses(containerId: string, stopTimeoutSeconds: number): Promise<void> {
    // Read ahead (prepareStop) and that process still in its namespace: the container has not
    // stopped or restarted since, so its pid and namespace are current — no inspect here. A
    // restart would have ended that process; its pid is never reused inside a dead namespace.
    const ahead = this.preparedStops.get(containerId);
    this.preparedStops.delete(containerId);
    if (ahead && (await inNamespace(String(ahead.pid), ahead.ns))) return this.stopAndWatch(containerId, ahead.grace, ahead.pid, ahead.ns, ahead.signal);
    const info = await call('inspect container', () => this.docker.getContainer(containerId).inspect({ abortSignal: this.signal() }));
    if (!info.State.Running) return;
    return this.stopAndWatch(containerId, graceIn(info, stopTimeoutSeconds), info.State.Pid, await pidNamespaceOf(info.State.Pid), stopSignalOf(info));
  }

  /**
   * The container's stop signal goes straight to its first process when this agent sees it
   * (same pid namespace as dockerd: the process's cgroup names the container), not through
   * dockerd, containerd and `runc kill` (~50–200 ms on a loaded node, all inside a
   * migration's stopped interval). Sent once: Docker's own stop, which would send it again
   * (a second SIGINT makes Redis exit without writing its data), comes only after the grace
   * period, to kill. Docker sees the exit as it sees any; the container's restart policy is
   * always `no` (drover restarts containers itself, and a cutover claims this one).
   */
  private async stopAndWatch(containerId: string, grace: number, pid: number, ns: string | null, signal: StopSignal | null): Promise<void> {
    if (ns !== null && signal !== null && (await signalled(pid, ns, containerId, signal))) {
      const watch = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const overdue = new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => this.stopWithin(containerId, 0).then(resolve, reject), grace * 1000);
      });
      overdue.catch(() => {}); // a kill that fails after the processes are gone changes nothing
      try {
        await Promise.race([namespaceEmptied(ns, pid, watch.signal), overdue]);
      } finally {
        clearTimeout(timer);
        watch.abort();
      }
      return;
    }
    const stopping = this.stopWithin(containerId, grace);
    if (ns === null) return stopping;
    stopping.catch(() => {}); // the processes are what matter here; a later stop or remove sees the rest
    const watch = new AbortController();
    try {
      await Promise.race([stopping, namespaceEmptied(ns, pid, watch.signal)]);
    } finally {
      watch.abort();
    }
  }

  /**
   * The output of application `app`'s container on this node (docs/DESIGN.md §27): the
   * running one, else the newest; null when there is none. `multiplexed`: Docker's framed
   * stdout/stderr (no TTY). With `follow` the stream goes on until `signal` aborts.
   */
  async logs(nodeUuid: string, app: string, options: { tail?: number; follow: boolean; signal: AbortSignal }): Promise<{ stream: AsyncIterable<Buffer> | Iterable<Buffer>; multiplexed: boolean } | null> {
    const found = await call('list containers', () =>
      this.docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${nodeUuid}`, `${LABEL_APP}=${app}`] }, abortSignal: this.signal() }),
    );
    const chosen = [...found].sort((a, b) => Number(b.State === 'running') - Number(a.State === 'running') || b.Created - a.Created)[0];
    if (chosen === undefined) return null;
    const container = this.docker.getContainer(chosen.Id);
    const info = await call('inspect container', () => container.inspect({ abortSignal: this.signal() }));
    const base = { stdout: true, stderr: true, abortSignal: options.signal, ...(options.tail === undefined ? {} : { tail: options.tail }) };
    const multiplexed = info.Config.Tty !== true;
    if (options.follow) {
      const stream = await call('container logs', () => container.logs({ ...base, follow: true }));
      return { stream: stream as unknown as AsyncIterable<Buffer>, multiplexed };
    }
    const buffer = await call('container logs', () => container.logs({ ...base, follow: false }));
    return { stream: [Buffer.from(buffer)], multiplexed };
  }

  async remove(containerId: string): Promise<void> {
    this.preparedStops.delete(containerId); // a read-ahead whose stop never came (an aborted cutover)
    // Never force: a running container is stopped first, gracefully, by a stop-container.
    await call('remove container', () => this.docker.getContainer(containerId).remove({ abortSignal: this.signal() }), {
      okStatus: [404],
    });
  }

  async exec(containerId: string, command: string[], timeoutMs: number): Promise<ExecResult> {
    const deadline = systemClock.now() + timeoutMs;
    const exec = await call('create exec', () =>
      this.docker.getContainer(containerId).exec({ Cmd: command, AttachStdout: false, AttachStderr: false, abortSignal: this.signal() }),
    );
    await call('start exec', () => exec.start({ Detach: true, abortSignal: this.signal() }));
    // Detached: poll until it ends — every 10 ms for the first 200 ms (a health probe such as
    // `redis-cli ping` ends in tens of ms, and during a migration's release its result is
    // downtime), then every 50 ms. XXX: a timed-out command keeps running in the container,
    // as with Docker's own HEALTHCHECK; docker has no way to kill an exec.
    const started = systemClock.now();
    for (;;) {
      const info = await call('inspect exec', () => exec.inspect({ abortSignal: this.signal() }));
      if (!info.Running && info.ExitCode !== null) return { exitCode: info.ExitCode };
      if (systemClock.now() >= deadline) {
        throw new DroverError('DROVER_EXEC_TIMEOUT', `command did not finish within ${timeoutMs} ms`, {
          retryable: true,
          detail: { containerId, command },
        });
      }
      const every = systemClock.now() - started < 200 ? 10 : 50;
      await systemClock.sleep(Math.min(every, Math.max(1, deadline - systemClock.now())));
    }
  }

  /** Pulls `image` unless it is present, and returns its inspection. Local clusters have no registry: a clear error then. */
  private async ensureImage(image: string): Promise<Docker.ImageInspectInfo> {
    try {
      return await call('inspect image', () => this.docker.getImage(image).inspect());
    } catch (err) {
      if (!(err instanceof DroverError && err.code === 'DROVER_DOCKER_NOT_FOUND')) throw err;
    }
    const abortSignal = AbortSignal.timeout(this.pullTimeoutMs);
    // The operator reads this in `drover status` beside the application: name the image.
    const unavailable = (err: unknown): DroverError => {
      const e = err instanceof DroverError ? err : classify('pull image', err);
      return new DroverError('DROVER_DOCKER_IMAGE_UNAVAILABLE', `image ${image} not found here, and the pull failed: ${e.message}`, { retryable: true, cause: e, detail: { image } });
    };
    const stream = await call('pull image', () => this.docker.pull(image, { abortSignal })).catch((err: unknown) => {
      throw unavailable(err);
    });
    const output = await new Promise<{ error?: string }[]>((resolve, reject) => {
      this.docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => (err ? reject(err) : resolve(out)));
    }).catch((err: unknown) => {
      throw unavailable(err);
    });
    // Registry errors arrive inside a 200 stream (apocas/dockerode#647).
    const failure = output.find((o) => o.error);
    if (failure) {
      throw new DroverError('DROVER_DOCKER_IMAGE_UNAVAILABLE', `image ${image} could not be pulled: ${failure.error}`, {
        retryable: true,
        detail: { image },
      });
    }
    return call('inspect image', () => this.docker.getImage(image).inspect());
  }

  /** The container's own grace period, or `fallback`; a container already gone gets `fallback` (its stop says so). */
  private async graceOf(containerId: string, fallback: number): Promise<number> {
    try {
      return graceIn(await call('inspect container', () => this.docker.getContainer(containerId).inspect({ abortSignal: this.signal() })), fallback);
    } catch (err) {
      if (err instanceof DroverError && err.code === 'DROVER_DOCKER_NOT_FOUND') return fallback;
      throw err;
    }
  }

  private signal(extraSeconds = 0): AbortSignal {
    return AbortSignal.timeout(this.callTimeoutMs + extraSeconds * 1000);
  }
}

/** The container's stop signal as Node names it (Docker's default SIGTERM); null for one Node cannot send by name or number. */
function stopSignalOf(info: Docker.ContainerInspectInfo): StopSignal | null {
  const raw = ((info.Config as { StopSignal?: string | null }).StopSignal ?? '').trim().toUpperCase() || 'SIGTERM';
  if (/^\d{1,2}$/.test(raw)) return Number(raw) >= 1 && Number(raw) <= 31 ? Number(raw) : null;
  const name = raw.startsWith('SIG') ? raw : `SIG${raw}`;
  return Object.hasOwn(osConstants.signals, name) ? (name as NodeJS.Signals) : null;
}

/** Compose's `stop_grace_period`, set at create as `StopTimeout`, else the agent's default. */
function graceIn(info: Docker.ContainerInspectInfo, fallback: number): number {
  const own = (info.Config as { StopTimeout?: number | null }).StopTimeout;
  return typeof own === 'number' && own >= 0 ? own : fallback;
}

function toRuntimeContainer(info: Docker.ContainerInspectInfo): RuntimeContainer {
  const published: RuntimeContainer['published'] = [];
  for (const [key, bindings] of Object.entries(info.NetworkSettings.Ports ?? {})) {
    const internal = Number.parseInt(key, 10);
    const udp = key.endsWith('/udp');
    if (!udp && !key.endsWith('/tcp')) continue; // sctp: drover publishes none
    for (const b of bindings ?? []) {
      const hostPort = Number.parseInt(b.HostPort, 10);
      if (Number.isFinite(internal) && Number.isFinite(hostPort) && hostPort > 0) {
        published.push({ internal, host: b.HostIp, host_port: hostPort, ...(udp ? { protocol: 'udp' as const } : {}) });
      }
    }
  }
  published.sort((a, b) => a.internal - b.internal || (a.protocol ?? '').localeCompare(b.protocol ?? '') || a.host_port - b.host_port);
  const networks = Object.values(info.NetworkSettings.Networks ?? {});
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    image: info.Config.Image,
    labels: info.Config.Labels ?? {},
    status: info.State.Status,
    running: info.State.Running,
    exitCode: info.State.Status === 'created' ? null : info.State.ExitCode,
    oomKilled: info.State.OOMKilled,
    startedAt: time(info.State.StartedAt),
    finishedAt: time(info.State.FinishedAt),
    mountSources: (info.Mounts ?? []).map((m) => m.Source),
    published,
    ipAddress: (info.NetworkSettings as { IPAddress?: string }).IPAddress || networks.find((n) => n.IPAddress)?.IPAddress || null,
  };
}

/** An image's Entrypoint or Cmd: an array (the API's form), a single string, or none. */
function argvOf(value: string | string[] | null | undefined): string[] | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? [value] : value;
}

function time(value: string | undefined): number | null {
  if (!value || value === NEVER) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

async function call<T>(what: string, fn: () => Promise<T>, options: { okStatus?: number[] } = {}): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status !== undefined && options.okStatus?.includes(status)) return undefined as T;
    throw classify(what, err);
  }
}

/** dockerode's errors → DroverError; the daemon's own text is in `err.json.message`. */
function classify(what: string, err: unknown): DroverError {
  const e = err as { statusCode?: number; json?: { message?: string }; code?: string; name?: string; message?: string };
  const message = e.json?.message ?? e.message ?? String(err);
  const detail = { operation: what, status: e.statusCode, daemon: message };
  if (e.statusCode === 404) return new DroverError('DROVER_DOCKER_NOT_FOUND', `${what}: ${message}`, { detail, cause: err });
  if (e.statusCode === 409) return new DroverError('DROVER_DOCKER_CONFLICT', `${what}: ${message}`, { retryable: true, detail, cause: err });
  if (e.name === 'AbortError' || e.name === 'TimeoutError') {
    return new DroverError('DROVER_TIMEOUT', `${what}: docker did not answer in time`, { retryable: true, detail, cause: err });
  }
  if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT' || e.code === 'ECONNRESET' || e.code === 'EPIPE') {
    return new DroverError('DROVER_DOCKER_UNAVAILABLE', `${what}: docker is not reachable (${e.code})`, { retryable: true, detail, cause: err });
  }
  const retryable = e.statusCode === undefined || e.statusCode >= 500;
  return new DroverError('DROVER_DOCKER_FAILED', `${what}: ${message}`, { retryable, detail, cause: err });
}

/**
 * The behaviour every ContainerRuntime promises, as one suite (docs/DESIGN.md §14): run on
 * the in-memory fake (testing/fake-container-runtime.test.ts) and on the dockerode adapter against
 * the host's dockerd (test/agent/container-runtime.int.test.ts). Where they disagree, the
 * real engine is right and the fake is changed.
 *
 * What the planner and the executor rely on: containers are found by drover's node label
 * only; a taken name is DROVER_DOCKER_CONFLICT (the planner removes before it creates); stop
 * and remove are idempotent; removing a running container is refused, never forced; a
 * crashed container stays exited until the agent restarts it (Docker's policy is `no`); a
 * container that is not there is DROVER_DOCKER_NOT_FOUND.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverError, isDroverError } from '#common/errors.ts';
import { Application } from '#common/model.ts';
import type { ContainerRuntime, RuntimeContainer } from '../container-runtime.ts';
import { containerSpec } from '../plan/container-spec.ts';
import type { ContainerSpec } from '../plan/types.ts';

export interface RuntimeUnderTest {
  runtime: ContainerRuntime;
  /** A busybox image present on the engine (sh, sleep, test). */
  image: string;
  /** The address ports are published on. */
  hostIp: string;
  /** Ends the container's processes as a SIGKILL from outside would (the engine did not ask). */
  kill(containerId: string): Promise<void>;
  /** Whether `exec` runs the command for real; the fake answers with its `execHandler`. */
  runsCommands: boolean;
  /** Where the engine has real processes: whether the container's current first process still runs (read before the check). */
  firstProcess?(containerId: string): Promise<{ alive(): boolean }>;
}

/** Keeps running, and exits 0 on SIGTERM (pid 1 of a container ignores a TERM it has no handler for). */
const SERVER = ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.1; done'];

async function until<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; retryable: boolean } | 'resolved'> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    if (!(err instanceof DroverError)) throw err;
    return { code: err.code, retryable: err.retryable };
  }
}

export function containerRuntimeContract(name: string, make: () => Promise<RuntimeUnderTest>): void {
  describe(`${name} (ContainerRuntime contract)`, () => {
    // Each test has its own node uuid and names, so runs and leftovers never meet.
    let t: RuntimeUnderTest;
    let node = '';
    let prefix = '';
    const made: { runtime: ContainerRuntime; node: string }[] = [];

    async function setUp(): Promise<RuntimeUnderTest> {
      t = await make();
      node = randomUUID();
      prefix = `ct${randomBytes(4).toString('hex')}`;
      made.push({ runtime: t.runtime, node });
      return t;
    }

    afterEach(async () => {
      for (const { runtime, node: n } of made.splice(0)) {
        for (const c of await runtime.listContainers(n)) {
          await runtime.stop(c.id, 1);
          await runtime.remove(c.id);
        }
      }
    });

    const spec = (app: string, fields: Record<string, unknown> = {}, options: { nodeUuid?: string; mounts?: Map<string, string> } = {}): ContainerSpec =>
      containerSpec(Application.parse({ name: `${prefix}-${app}`, image: t.image, command_line: SERVER, ...fields }), {
        nodeUuid: options.nodeUuid ?? node,
        address: t.hostIp,
        generation: 3,
        mountpoints: options.mounts ?? new Map(),
      });
    const only = async (nodeUuid = node): Promise<RuntimeContainer> => {
      const listed = await t.runtime.listContainers(nodeUuid);
      expect(listed).toHaveLength(1);
      return listed[0]!;
    };

    it('creates and starts a container, and lists it by its node label with the labels, image and state it was given', async () => {
      const { runtime } = await setUp();
      const s = spec('web');
      const before = Date.now();
      await runtime.createAndStart(s);
      const c = await only();
      expect(c).toMatchObject({
        name: s.name,
        image: t.image,
        labels: { 'drover.node': node, 'drover.app': `${prefix}-web`, 'drover.generation': '3', 'drover.config-hash': s.configHash },
        status: 'running',
        running: true,
        exitCode: 0,
        oomKilled: false,
        finishedAt: null,
        mountSources: [],
        published: [],
      });
      expect(c.id).toEqual(expect.any(String));
      expect(c.startedAt).toBeGreaterThanOrEqual(before - 2_000);
      expect(c.ipAddress).toEqual(expect.any(String));
    });

    it('lists only the containers labelled for the node it is asked about', async () => {
      const { runtime } = await setUp();
      const other = randomUUID();
      made.push({ runtime, node: other });
      await runtime.createAndStart(spec('here'));
      await runtime.createAndStart(spec('there', {}, { nodeUuid: other }));
      expect((await runtime.listContainers(node)).map((c) => c.name)).toEqual([`drover-${prefix}-here`]);
      expect((await runtime.listContainers(other)).map((c) => c.name)).toEqual([`drover-${prefix}-there`]);
      expect(await runtime.listContainers(randomUUID())).toEqual([]);
    });

    it('publishes each internal port on the host address with a host port the engine picks, while it runs', async () => {
      const { runtime } = await setUp();
      await runtime.createAndStart(spec('ports', { ports: [{ internal: 9090, external: 19090 }, { internal: 8080, external: 18080 }] }));
      const c = await only();
      expect(c.published.map((p) => [p.internal, p.host])).toEqual([
        [8080, t.hostIp],
        [9090, t.hostIp],
      ]);
      for (const p of c.published) expect(p.host_port).toBeGreaterThan(0);
      expect(new Set(c.published.map((p) => p.host_port)).size).toBe(2);
      await runtime.stop(c.id, 1);
      expect(await only()).toMatchObject({ running: false, published: [], ipAddress: null });
    });

    it('bind-mounts the datasets it is given, and refuses a missing source (DROVER_DOCKER_FAILED, not retryable) instead of creating it', async () => {
      const { runtime } = await setUp();
      const dir = await mkdtemp(join(tmpdir(), 'drover-ct-'));
      try {
        const ds = '00000000-0000-4000-8000-0000000000d1';
        const volumes = [{ dataset_id: ds, mountpoint: '/data' }];
        await runtime.createAndStart(spec('data', { volumes }, { mounts: new Map([[ds, dir]]) }));
        expect((await only()).mountSources).toEqual([dir]);
        const missing = join(dir, 'not-there');
        expect(await codeOf(runtime.createAndStart(spec('nodata', { volumes }, { mounts: new Map([[ds, missing]]) })))).toEqual({
          code: 'DROVER_DOCKER_FAILED',
          retryable: false,
        });
        expect((await runtime.listContainers(node)).map((c) => c.name)).toEqual([`drover-${prefix}-data`]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('refuses a second container with a taken name (DROVER_DOCKER_CONFLICT, retryable) and leaves the first alone', async () => {
      const { runtime } = await setUp();
      await runtime.createAndStart(spec('twice'));
      const first = await only();
      expect(await codeOf(runtime.createAndStart(spec('twice', { environment: { CHANGED: '1' } })))).toEqual({ code: 'DROVER_DOCKER_CONFLICT', retryable: true });
      expect(await only()).toMatchObject({ id: first.id, running: true, labels: first.labels });
    });

    it('stops a container (exited, with a finish time), and stopping it again is fine', async () => {
      const { runtime } = await setUp();
      await runtime.createAndStart(spec('stop'));
      const c = await only();
      await runtime.stop(c.id, 5);
      const stopped = await only();
      expect(stopped).toMatchObject({ id: c.id, running: false, status: 'exited' });
      expect(stopped.exitCode).toEqual(expect.any(Number));
      expect(stopped.finishedAt).toBeGreaterThanOrEqual(c.startedAt!);
      await runtime.stop(c.id, 5);
      await runtime.stopProcesses(c.id, 5);
      expect(await only()).toMatchObject({ running: false, finishedAt: stopped.finishedAt });
    });

    it('stopProcesses on a running container leaves it stopped once a stop follows', async () => {
      const { runtime } = await setUp();
      await runtime.createAndStart(spec('procs'));
      const c = await only();
      await runtime.stopProcesses(c.id, 5);
      await runtime.stop(c.id, 5);
      expect(await only()).toMatchObject({ running: false, status: 'exited' });
    });

    it('stopProcesses after a read-ahead (prepareStop) stops the container, and waits for the new process of one restarted since', async () => {
      const { runtime } = await setUp();
      // Takes a second to end after the stop signal: a stop that returns early is seen.
      await runtime.createAndStart(spec('ahead', { command_line: ['sh', '-c', 'trap "sleep 1; exit 0" TERM; while true; do sleep 0.1; done'] }));
      const c = await only();
      await runtime.prepareStop?.(c.id, 5);
      const first = await t.firstProcess?.(c.id);
      await runtime.stopProcesses(c.id, 5);
      expect(first?.alive() ?? false).toBe(false);
      await runtime.stop(c.id, 5);
      expect(await only()).toMatchObject({ running: false, status: 'exited' });
      // Read ahead, then restarted (a restart policy, an operator): the read-ahead is stale.
      await runtime.restart(c.id, 5);
      await runtime.prepareStop?.(c.id, 5);
      await runtime.restart(c.id, 5);
      const second = await t.firstProcess?.(c.id);
      await runtime.stopProcesses(c.id, 5);
      expect(second?.alive() ?? false).toBe(false);
      await runtime.stop(c.id, 5);
      expect(await only()).toMatchObject({ running: false, status: 'exited' });
    });

    it('sees a killed container as exited with 137, does not restart it itself, and restart starts it again with the same id', async () => {
      const { runtime } = await setUp();
      await runtime.createAndStart(spec('crash'));
      const c = await only();
      await t.kill(c.id);
      const dead = await until('the container to exit', only, (x) => !x.running);
      expect(dead).toMatchObject({ status: 'exited', exitCode: 137 });
      // Docker's own restart policy is `no`: the agent decides (plan/restart.ts).
      await new Promise((r) => setTimeout(r, 1_500));
      expect(await only()).toMatchObject({ running: false, finishedAt: dead.finishedAt });
      await runtime.restart(c.id, 1);
      const again = await only();
      expect(again).toMatchObject({ id: c.id, running: true, status: 'running', exitCode: 0 });
      expect(again.startedAt).toBeGreaterThanOrEqual(dead.finishedAt!);
    });

    it('restarts a running container', async () => {
      const { runtime } = await setUp();
      await runtime.createAndStart(spec('bounce'));
      const c = await only();
      await new Promise((r) => setTimeout(r, 20));
      await runtime.restart(c.id, 5);
      const again = await only();
      expect(again).toMatchObject({ id: c.id, running: true });
      expect(again.startedAt).toBeGreaterThan(c.startedAt!);
    });

    it('refuses to remove a running container (DROVER_DOCKER_CONFLICT), and removing a removed one is fine', async () => {
      const { runtime } = await setUp();
      await runtime.createAndStart(spec('rm'));
      const c = await only();
      expect(await codeOf(runtime.remove(c.id))).toEqual({ code: 'DROVER_DOCKER_CONFLICT', retryable: true });
      expect(await only()).toMatchObject({ running: true });
      await runtime.stop(c.id, 5);
      await runtime.remove(c.id);
      await runtime.remove(c.id);
      expect(await runtime.listContainers(node)).toEqual([]);
      // The name is free again: the planner's stop → remove → start on a spec change.
      await runtime.createAndStart(spec('rm'));
      expect((await only()).id).not.toBe(c.id);
    });

    it('raises DROVER_DOCKER_NOT_FOUND for a container that is not there', async () => {
      const { runtime } = await setUp();
      const missing = `drover-${prefix}-missing`;
      const calls = [() => runtime.stop(missing, 1), () => runtime.stopProcesses(missing, 1), () => runtime.restart(missing, 1), () => runtime.exec(missing, ['true'], 1_000)];
      for (const call of calls) expect(await codeOf(call())).toMatchObject({ code: 'DROVER_DOCKER_NOT_FOUND' });
      await runtime.remove(missing);
    });

    it('runs a command in a running container, and refuses one in a stopped container (DROVER_DOCKER_CONFLICT)', async () => {
      const { runtime } = await setUp();
      await runtime.createAndStart(spec('exec'));
      const c = await only();
      expect(await runtime.exec(c.id, ['true'], 5_000)).toEqual({ exitCode: 0 });
      await runtime.stop(c.id, 5);
      const err = await runtime.exec(c.id, ['true'], 5_000).catch((e: unknown) => e);
      expect(isDroverError(err, 'DROVER_DOCKER_CONFLICT')).toBe(true);
    });

    it('gives the container its environment, and exec returns the command\'s exit code', async (ctx) => {
      const { runtime, runsCommands } = await setUp();
      if (!runsCommands) ctx.skip('this runtime does not run commands');
      await runtime.createAndStart(spec('env', { environment: { GREETING: 'hello there' } }));
      const c = await only();
      expect(await runtime.exec(c.id, ['sh', '-c', 'test "$GREETING" = "hello there"'], 5_000)).toEqual({ exitCode: 0 });
      expect(await runtime.exec(c.id, ['sh', '-c', 'exit 3'], 5_000)).toEqual({ exitCode: 3 });
    });
  });
}

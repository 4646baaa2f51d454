import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { Application } from '#common/model.ts';
import { watchdogFencedWithinMs } from '#common/fence-timing.ts';
import { DockerRuntime } from '../../convergence-agent/docker.ts';
import { WatchdogProcess } from '../../convergence-agent/fence-watchdog/arm.ts';
import { containerSpec } from '../../convergence-agent/plan/container-spec.ts';
import { execaRunner } from '../../convergence-agent/zfs/command.ts';
import { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';
import { until } from '../migration/stack.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';

// The fence watchdog process (docs/DESIGN.md §18 "The fence watchdog") against a local-cluster
// node's own dockerd and pool: armed and then not renewed — as by an agent that is SIGSTOPped —
// it stops the failover-enabled container and sets its dataset read-only by itself; renewed, it
// does nothing; disarmed, it ends.
describeWith(['root', 'dockerd', 'zfs'], 'the fence watchdog process on a local-cluster node', () => {
  const cluster = useTestCluster({ nodes: 1, docker: true, ssh: false, images: ['busybox'] });
  const node = () => cluster().nodes[0]!;
  const dataset = randomUUID();
  let runtime: DockerRuntime;
  let store: ZfsStore;
  let watchdog: WatchdogProcess | null = null;
  const STOP_S = 1;

  const start = async (name: string, mounts = new Map<string, string>()) => {
    const volumes = [...mounts.keys()].map((id) => ({ dataset_id: id, mountpoint: '/data' }));
    const app = Application.parse({ name, image: 'drover/busybox:latest', command_line: ['sleep', '3600'], volumes });
    await runtime.createAndStart(containerSpec(app, { nodeUuid: node().uuid, address: node().address, generation: 1, mountpoints: mounts }));
  };
  const running = async () => (await runtime.listContainers(node().uuid)).filter((c) => c.running).map((c) => c.name).sort();
  const spawn = () =>
    new WatchdogProcess({
      runner: execaRunner,
      program: join(import.meta.dirname, '..', '..', 'bin', 'drover-fence-watchdog.js'),
      args: ['--docker-socket', node().dockerSocket!, '--pool', node().pool, '--node-uuid', node().uuid, '--stop-timeout-seconds', String(STOP_S)],
      log: silentLogger(),
    });

  beforeAll(async () => {
    runtime = new DockerRuntime({ socketPath: node().dockerSocket! });
    store = new ZfsStore({ pool: node().pool, log: silentLogger() });
    const info = await store.createDataset(dataset, { maximumSize: null });
    await start('db', new Map([[dataset, info.mountpoint!]]));
    await start('web');
  }, 120_000);

  afterAll(async () => {
    await watchdog?.disarm();
    for (const c of await runtime.listContainers(node().uuid).catch(() => [])) {
      await runtime.stop(c.id, 0).catch(() => undefined);
      await runtime.remove(c.id).catch(() => undefined);
    }
    await store.destroyDataset(dataset).catch(() => undefined);
  }, 120_000);

  it('does nothing while it is armed again before each deadline', async () => {
    watchdog = spawn();
    // Long enough for the process to have loaded even on a loaded machine (8 s seen at load 36):
    // the next test measures the fence, not the start.
    const begun = Date.now();
    for (let i = 0; Date.now() - begun < 12_000; i++) {
      watchdog.arm(i, 1000, ['db'], [dataset]);
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(await running()).toEqual(['drover-db', 'drover-web']);
  }, 60_000);

  it('stops the armed application and sets its dataset read-only once the deadline passes unrenewed, and nothing else; ends when disarmed', async () => {
    const armedAt = performance.now();
    const inMs = 2000;
    watchdog!.arm(1_000_000, inMs, ['db'], [dataset]);
    await until('db stopped by the watchdog', async () => !(await running()).includes('drover-db'), 60_000, 100);
    const stoppedMs = performance.now() - armedAt;
    await until('the dataset read-only', async () => (await store.getDataset(dataset))?.readonly === true, 30_000, 100);
    const readonlyMs = performance.now() - armedAt;
    // The bound a user relies on: the fence done by the timing argument's bound after the last
    // renewal (fence_after = inMs here), with room for a loaded machine's slower docker and zfs.
    const bound = watchdogFencedWithinMs({ fenceAfterMs: inMs, stopTimeoutMs: STOP_S * 1000 });
    console.log(`fence watchdog: armed for ${inMs} ms; container stopped at ${Math.round(stoppedMs)} ms, dataset read-only at ${Math.round(readonlyMs)} ms (bound ${bound} ms)`);
    expect(stoppedMs).toBeGreaterThanOrEqual(inMs);
    expect(readonlyMs).toBeLessThan(bound + 5_000);
    expect(await running()).toEqual(['drover-web']);
    const pid = watchdog!.pid!;
    await watchdog!.disarm();
    watchdog = null;
    expect(() => process.kill(pid, 0)).toThrow();
  }, 90_000);
});

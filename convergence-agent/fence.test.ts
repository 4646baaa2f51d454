import { describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { containerSpec } from './plan/container-spec.ts';
import { FakeContainerRuntime } from './testing/fake-container-runtime.ts';
import { ADDRESS_A, app, dataset, desired, DS_1, DS_2, NODE_A, NODE_B } from './testing/fixtures.ts';
import { FenceWatchdog, type OutsideFence } from './fence.ts';

const replicated = { replicas: 1, interval_seconds: 2, retention: { primary: '1x1m(keep=all)', replicas: '1x1m(keep=all)' } };

async function world(outside?: OutsideFence) {
  const clock = new FakeClock(1_000_000);
  const runtime = new FakeContainerRuntime(() => clock.now());
  const apps = [
    app('redis', { node_uuid: NODE_A, volumes: [{ dataset_id: DS_1, mountpoint: '/data' }] }),
    app('web', { node_uuid: NODE_A }),
    app('plain', { node_uuid: NODE_A, volumes: [{ dataset_id: DS_2, mountpoint: '/data' }] }),
  ];
  let view = desired({ version: 5, applications: apps, datasets: [dataset(DS_1, NODE_A, { replication: replicated, replicas: [NODE_B] }), dataset(DS_2)] });
  for (const a of apps) {
    const mountpoints = new Map(a.volumes.map((v) => [v.dataset_id, `/pool/${v.dataset_id}`]));
    await runtime.createAndStart(containerSpec(a, { nodeUuid: NODE_A, address: ADDRESS_A, generation: 0, mountpoints }));
  }
  const readonly: string[] = [];
  const fence = new FenceWatchdog({
    clock,
    runtime,
    setReadonly: async (id) => void readonly.push(id),
    log: silentLogger(),
    nodeUuid: NODE_A,
    desired: () => view,
    fenceAfterMs: 6000,
    stopTimeoutSeconds: 2,
    ...(outside ? { outside } : {}),
  });
  const running = async () => (await runtime.listContainers(NODE_A)).filter((c) => c.running).map((c) => c.name).sort();
  return { clock, runtime, fence, readonly, running, setView: (v: typeof view) => (view = v), view: () => view };
}

describe('self-fencing', () => {
  it('fires at fence_after without an acknowledged report, not before', async () => {
    const w = await world();
    await w.fence.acked(w.clock.now(), 5);
    expect(w.fence.gating(w.view())).toBe(false);
    await w.clock.advance(6000);
    await w.fence.check();
    expect(w.fence.current).toBe('live');
    await w.clock.advance(1);
    await w.fence.check();
    expect(w.fence.current).toBe('fenced');
  });

  it('measures from when the acknowledged report was sent, not when its answer came', async () => {
    const w = await world();
    const sentAt = w.clock.now();
    await w.clock.advance(5000);
    await w.fence.acked(sentAt, 5);
    await w.clock.advance(1001);
    await w.fence.check();
    expect(w.fence.current).toBe('fenced');
  });

  it('stops only the containers that fail over with their data (not one without data, not one whose data has no replica) and sets their datasets read-only', async () => {
    const w = await world();
    await w.fence.acked(w.clock.now(), 5);
    await w.clock.advance(6001);
    await w.fence.check();
    expect(await w.running()).toEqual(['drover-plain', 'drover-web']);
    expect(w.readonly).toEqual([DS_1]);
  });

  it('keeps the gate shut until a report sent after the fence is acknowledged and the view is that new', async () => {
    const w = await world();
    await w.fence.acked(w.clock.now(), 5);
    await w.clock.advance(7000);
    await w.fence.check();
    expect(w.fence.gating(w.view())).toBe(true);
    // An old report's late answer does not open it.
    await w.fence.acked(w.clock.now() - 7000, 6);
    expect(w.fence.gating(w.view())).toBe(true);
    await w.fence.acked(w.clock.now(), 9);
    expect(w.fence.gating(w.view())).toBe(true);
    w.setView({ ...w.view(), version: 9 });
    expect(w.fence.gating(w.view())).toBe(false);
    expect(w.fence.current).toBe('live');
  });

  it('fences at once when an answer arrives after the deadline passed (an agent that was paused)', async () => {
    const w = await world();
    const sentAt = w.clock.now();
    await w.fence.acked(sentAt, 5);
    await w.clock.advance(20_000);
    await w.fence.acked(sentAt + 19_000, 7);
    expect(w.fence.current).toBe('fenced');
    expect(await w.running()).toEqual(['drover-plain', 'drover-web']);
  });

  it('starts gated: nothing failover-enabled starts before the first confirmation', async () => {
    const w = await world();
    expect(w.fence.gating(w.view())).toBe(true);
    await w.fence.acked(w.clock.now(), 5);
    expect(w.fence.gating(w.view())).toBe(false);
  });

  it('arms the watchdog process with the same deadline and scope at each acknowledgement, and disarms it on a stop', async () => {
    const arms: { since: number; inMs: number; apps: readonly string[]; datasetIds: readonly string[] }[] = [];
    let disarmed = false;
    const w = await world({ arm: (since, inMs, apps, datasetIds) => void arms.push({ since, inMs, apps, datasetIds }), disarm: async () => void (disarmed = true) });
    const sentAt = w.clock.now();
    await w.clock.advance(1500);
    await w.fence.acked(sentAt, 5);
    // Only redis fails over with its data: the scope is the agent fence's own.
    expect(arms.at(-1)).toEqual({ since: sentAt, inMs: 6000 - 1500, apps: ['redis'], datasetIds: [DS_1] });
    await w.fence.stop();
    expect(disarmed).toBe(true);
  });
});

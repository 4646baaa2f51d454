import { afterEach, describe, expect, it } from 'vitest';
import type { Migration } from '#common/model.ts';
import { CLOCK_RATE_ERROR, fencedWithinMs, MIN_FAILOVER_MARGIN_MS } from '#common/fence-timing.ts';
import { container, datasetId, HARNESS_EPOCH, harness, nodeId, observedDataset, report, type Harness } from '../testing/harness.ts';

let h: Harness;
afterEach(async () => h?.close());

const D = datasetId(1);
const snap = (ms: number) => `drover-${new Date(ms).toISOString().replace(/[-:]/g, '').replace('.', '')}-0001`;
const S1 = snap(HARNESS_EPOCH - 4000);
const S2 = snap(HARNESS_EPOCH - 2000);
const held = (name: string, txg: number) => ({ name, guid: String(txg), createtxg: txg });

/** Nodes 1–3 up; redis on node 1 with D replicated to one replica; node 2 holds S2, node 3 S1. */
async function cluster(): Promise<void> {
  h = await harness({ nodeTimeoutMs: 10_000, nodeDownGraceMs: 30_000 });
  for (const i of [1, 2, 3]) await h.request('POST', '/v1/drover/agents/report', report(i));
  await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: D, replication: { replicas: 1, interval_seconds: 2 } });
  const created = await h.request('POST', '/v1/configuration/containers', {
    name: 'redis',
    image: 'drover/redis:1',
    node_uuid: nodeId(1),
    volumes: [{ dataset_id: D, mountpoint: '/data' }],
    ports: [{ internal: 6379, external: 16379 }],
  });
  expect(created.statusCode, created.body).toBe(201);
}

/** Nodes 2 and 3 report every 3 s for `ms`; node 1 stays silent. */
async function othersReportFor(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 3000) {
    h.clock.advance(3000);
    await h.request('POST', '/v1/drover/agents/report', report(2, { datasets: [observedDataset(D, { writable: false, snapshots: [held(S1, 1), held(S2, 2)] })] }));
    await h.request('POST', '/v1/drover/agents/report', report(3, { datasets: [observedDataset(D, { writable: false, snapshots: [held(S1, 1)] })] }));
    await h.control.tick();
  }
}

const failovers = (): Migration[] => h.control.desired.migrations.filter((m) => m.failover !== undefined);

describe('failover on the control service', () => {
  it('never fails over before the fenced deadline, and does at lease TTL + margin while the node is only unknown', async () => {
    await cluster();
    const fenced = fencedWithinMs({ fenceAfterMs: 6000, stopTimeoutMs: 2000 });
    let at: number | null = null;
    for (let t = 0; t <= 14_000; t += 100) {
      h.clock.advance(100);
      if (t % 1000 === 0) {
        await h.request('POST', '/v1/drover/agents/report', report(2, { datasets: [observedDataset(D, { writable: false, snapshots: [held(S1, 1), held(S2, 2)] })] }));
        await h.request('POST', '/v1/drover/agents/report', report(3));
      }
      await h.control.tick();
      const silent = h.control.observed.silentMs(nodeId(1))!;
      if (failovers().length === 0) {
        expect(silent).toBeLessThan(11_000);
        continue;
      }
      at ??= silent;
    }
    // At TTL 10 s + margin 1 s on the control service's clock, even when it runs 5 % fast.
    expect(at).toBe(11_000);
    expect(at! * (1 - CLOCK_RATE_ERROR)).toBeGreaterThan(fenced);
    expect(h.control.observed.stateOf(nodeId(1))).toBe('unknown');
    expect(failovers()[0]!.failover!.failed_silent_ms).toBe(11_000);
  });

  it('waits for a longer margin when configured, and not at all when failover is off', async () => {
    h = await harness({ nodeTimeoutMs: 10_000, nodeDownGraceMs: 30_000, failoverMarginMs: 4000 });
    expect(h.control.failoverAfterMs).toBe(14_000);
    await h.close();
    h = await harness({ nodeTimeoutMs: 10_000, failoverMarginMs: 100 });
    expect(h.control.failoverAfterMs).toBe(10_000 + MIN_FAILOVER_MARGIN_MS);
    await h.close();
    h = await harness({ nodeTimeoutMs: 10_000, failoverMarginMs: null });
    expect(h.control.failoverAfterMs).toBeNull();
  });

  it('moves the application and its dataset to the replica with the newest snapshot once the node is silent for TTL + margin, as one record with the data window', async () => {
    await cluster();
    const seen: string[] = [];
    h.control.events.subscribe(({ event }) => {
      if (event.type === 'migration') seen.push((event.data as Migration).from);
    });
    await othersReportFor(45_000);
    const [record] = failovers();
    expect(record).toMatchObject({ from: nodeId(1), to: nodeId(2), phase: 'done', application: 'redis', dataset_ids: [D] });
    expect(record!.failover!.snapshots).toEqual([{ dataset_id: D, snapshot: S2, created_at: HARNESS_EPOCH - 2000 }]);
    expect(record!.failover!.failed_silent_ms).toBeGreaterThanOrEqual(11_000);
    // S2 was 2 s old when node 1 was last heard from: that is the data window; the age at the decision adds the detection.
    expect(record!.failover!.data_window_seconds).toBe(2);
    expect(record!.failover!.snapshot_age_seconds).toBe(2 + record!.failover!.failed_silent_ms / 1000);
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(2));
    expect(h.control.desired.datasets[0]).toMatchObject({ primary: nodeId(2) });
    expect(h.control.desired.datasets[0]!.replicas).not.toContain(nodeId(2));
    expect(seen).toContain(nodeId(1));
    // Exactly once, however long the node stays down.
    await othersReportFor(9000);
    expect(failovers()).toHaveLength(1);
  });

  it('routes to the new node and no longer to the dead one once it runs there, and records when', async () => {
    await cluster();
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('redis', { published: [{ internal: 6379, host: '127.0.0.11', host_port: 16379 }] })] }));
    expect((await h.request('GET', '/v1/drover/routes')).json().routes[0].target.node_uuid).toBe(nodeId(1));
    await othersReportFor(45_000);
    const [record] = failovers();
    const view = (await h.request('GET', `/v1/drover/agents/${nodeId(2)}/desired`)).json();
    expect(view.migrations.map((m: Migration) => m.id)).toEqual([record!.id]);
    expect((await h.request('GET', '/v1/drover/routes')).json().routes[0].target).toBeNull();
    const running = container('redis', { generation: record!.generation, published: [{ internal: 6379, host: '127.0.0.12', host_port: 16379 }] });
    await h.request('POST', '/v1/drover/agents/report', report(2, { containers: [running], datasets: [observedDataset(D, { snapshots: [held(S2, 2)] })] }));
    await h.control.tick();
    expect((await h.request('GET', '/v1/drover/routes')).json().routes[0].target).toMatchObject({ node_uuid: nodeId(2), host: '127.0.0.12' });
    expect(failovers()[0]!.failover!.ready_at).toBe(h.clock.now());
  });

  it('shows the failed node its failover until it reports the copy it kept, and records that copy', async () => {
    await cluster();
    await othersReportFor(45_000);
    const [record] = failovers();
    const view = (await h.request('GET', `/v1/drover/agents/${nodeId(1)}/desired`)).json();
    expect(view.migrations.map((m: Migration) => m.id)).toEqual([record!.id]);
    const name = `drover-n1/drover-diverged/${D}-g${record!.generation}`;
    await h.request('POST', '/v1/drover/agents/report', report(1, { diverged: [{ dataset_id: D, name, generation: record!.generation, used_bytes: 1024 }] }));
    await h.control.tick();
    expect(failovers()[0]!.failover!.diverged).toEqual([{ dataset_id: D, node_uuid: nodeId(1), name, kept_at: h.clock.now() }]);
    expect((await h.request('GET', `/v1/drover/agents/${nodeId(1)}/desired`)).json().migrations).toEqual([]);
  });

  it('records a failed node whose copy rejoined in place, and stops showing it the failover', async () => {
    await cluster();
    await othersReportFor(15_000);
    const [record] = failovers();
    await h.request('POST', '/v1/drover/agents/report', report(1, { rejoined: [{ dataset_id: D, generation: record!.generation }] }));
    await h.control.tick();
    expect(failovers()[0]!.failover!.rejoined).toEqual([{ dataset_id: D, node_uuid: nodeId(1), at: h.clock.now() }]);
    expect(failovers()[0]!.failover!.diverged).toEqual([]);
    expect((await h.request('GET', `/v1/drover/agents/${nodeId(1)}/desired`)).json().migrations).toEqual([]);
  });

  it('reschedules an application without datasets by the placement rules', async () => {
    h = await harness({ nodeTimeoutMs: 10_000, nodeDownGraceMs: 30_000 });
    for (const i of [1, 2]) await h.request('POST', '/v1/drover/agents/report', report(i));
    await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'drover/x:1', node_uuid: nodeId(1) });
    for (let t = 0; t < 45_000; t += 3000) {
      h.clock.advance(3000);
      await h.request('POST', '/v1/drover/agents/report', report(2));
      await h.control.tick();
    }
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(2));
    expect(failovers()[0]).toMatchObject({ from: nodeId(1), to: nodeId(2), dataset_ids: [], failover: { snapshot_age_seconds: null } });
  });

  it('does not fail over an application whose data has no replica: it waits for its node', async () => {
    h = await harness({ nodeTimeoutMs: 10_000, nodeDownGraceMs: 30_000 });
    for (const i of [1, 2]) await h.request('POST', '/v1/drover/agents/report', report(i));
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: D });
    await h.request('POST', '/v1/configuration/containers', { name: 'db', image: 'drover/x:1', node_uuid: nodeId(1), volumes: [{ dataset_id: D, mountpoint: '/data' }] });
    for (let t = 0; t < 45_000; t += 3000) {
      h.clock.advance(3000);
      await h.request('POST', '/v1/drover/agents/report', report(2));
      await h.control.tick();
    }
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(1));
    expect(failovers()).toEqual([]);
  });
});

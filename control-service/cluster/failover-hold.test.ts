import { afterEach, describe, expect, it } from 'vitest';
import type { Migration } from '#common/model.ts';
import { ROUTE_HOLD_ACK_MS, ROUTE_HOLD_FAILED_NODE_ACK_MS } from '#common/fence-timing.ts';
import { container, datasetId, HARNESS_EPOCH, harness, nodeId, observedDataset, report, type Harness } from '../testing/harness.ts';

// The route hold of a failover (docs/DESIGN.md §18): the chosen node may promote only once every
// live proxy applied the route that holds the application's connections, or after a bound.
let h: Harness;
afterEach(async () => h?.close());

const D = datasetId(1);
const S = `drover-${new Date(HARNESS_EPOCH - 2000).toISOString().replace(/[-:]/g, '').replace('.', '')}-0001`;
const failovers = (): Migration[] => h.control.desired.migrations.filter((m) => m.failover !== undefined);
const routeVersion = async (): Promise<number> => (await h.request('GET', '/v1/drover/routes')).json().version;
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

/**
 * Redis on node 1 (replicated to node 2), published; node 3's proxy acks every route table
 * until node 1 has been silent long enough to fail over; returns the record.
 */
async function failedOver(proxies: number[] = [3]): Promise<Migration> {
  h = await harness({ nodeTimeoutMs: 10_000, nodeDownGraceMs: 30_000 });
  for (const i of [1, 2, 3]) await h.request('POST', '/v1/drover/agents/report', report(i));
  await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: D, replication: { replicas: 1, interval_seconds: 2 } });
  await h.request('POST', '/v1/configuration/containers', { name: 'redis', image: 'drover/redis:1', node_uuid: nodeId(1), volumes: [{ dataset_id: D, mountpoint: '/data' }], ports: [{ internal: 6379, external: 16379 }] });
  await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('redis', { published: [{ internal: 6379, host: '127.0.0.11', host_port: 16379 }] })] }));
  for (let t = 0; t < 20_000 && failovers().length === 0; t += 100) {
    if (t % 1000 === 0) {
      await h.request('POST', '/v1/drover/agents/report', report(2, { datasets: [observedDataset(D, { writable: false, snapshots: [{ name: S, guid: '1', createtxg: 1 }] })] }));
      await h.request('POST', '/v1/drover/agents/report', report(3));
      for (const i of proxies) await h.request('POST', '/v1/drover/routes/ack', { node_uuid: nodeId(i), version: await routeVersion() });
    }
    h.clock.advance(100);
    await h.control.tick();
  }
  await settle();
  expect(failovers()).toHaveLength(1);
  return failovers()[0]!;
}

describe('the route hold of a failover', () => {
  it('holds the route at the decision and lets the chosen node promote once every live proxy applied it', async () => {
    const record = await failedOver();
    expect(record.failover!.routes_held_at).toBeNull();
    const table = (await h.request('GET', '/v1/drover/routes')).json();
    // No target (so proxies close relays to node 1) and held: new connections wait.
    expect(table.routes[0]).toMatchObject({ target: null, hold: true, generation: record.generation });
    const view = (await h.request('GET', `/v1/drover/agents/${nodeId(2)}/desired`)).json();
    expect(view.migrations[0].failover.routes_held_at).toBeNull();

    h.clock.advance(300);
    await h.request('POST', '/v1/drover/routes/ack', { node_uuid: nodeId(3), version: table.version });
    await settle();
    expect(failovers()[0]!.failover!.routes_held_at).toBe(h.clock.now());
    expect(failovers()[0]!.failover!.routes_unacked).toBeUndefined();
    expect((await h.request('GET', `/v1/drover/agents/${nodeId(2)}/desired`)).json().migrations[0].failover.routes_held_at).toBe(h.clock.now());
  });

  it('promotes anyway after the bound when a live proxy does not acknowledge, naming it', async () => {
    const record = await failedOver();
    h.clock.advance(ROUTE_HOLD_ACK_MS - 100);
    await h.control.tick();
    await settle();
    expect(failovers()[0]!.failover!.routes_held_at).toBeNull();
    h.clock.advance(200);
    await settle();
    const info = failovers()[0]!.failover!;
    expect(info.routes_held_at).toBeGreaterThanOrEqual(record.started_at + ROUTE_HOLD_ACK_MS);
    expect(info.routes_held_at).toBeLessThanOrEqual(h.clock.now());
    expect(info.routes_unacked).toEqual([nodeId(3)]);
    expect(failovers()[0]!.id).toBe(record.id);
  });

  it('waits less for the failed node\'s own proxy alone: cut off with its node, it never acknowledges', async () => {
    // Node 1's agent is silent but its proxy was live (it acknowledged every table until the decision).
    const record = await failedOver([1, 3]);
    const table = (await h.request('GET', '/v1/drover/routes')).json();
    await h.request('POST', '/v1/drover/routes/ack', { node_uuid: nodeId(3), version: table.version });
    await settle();
    expect(failovers()[0]!.failover!.routes_held_at).toBeNull();
    h.clock.advance(ROUTE_HOLD_FAILED_NODE_ACK_MS + 10);
    await settle();
    const info = failovers()[0]!.failover!;
    expect(info.routes_held_at).toBeGreaterThanOrEqual(record.started_at + ROUTE_HOLD_FAILED_NODE_ACK_MS);
    expect(info.routes_held_at).toBeLessThan(record.started_at + ROUTE_HOLD_ACK_MS);
    expect(info.routes_unacked).toEqual([nodeId(1)]);
  });

  it('keeps holding until the application runs on the chosen node, then routes there', async () => {
    const record = await failedOver();
    const running = container('redis', { generation: record.generation, published: [{ internal: 6379, host: '127.0.0.12', host_port: 16379 }] });
    await h.request('POST', '/v1/drover/agents/report', report(2, { containers: [running], datasets: [observedDataset(D, { snapshots: [{ name: S, guid: '1', createtxg: 1 }] })] }));
    await h.control.tick();
    expect((await h.request('GET', '/v1/drover/routes')).json().routes[0]).toMatchObject({ target: { node_uuid: nodeId(2) }, hold: false });
  });
});

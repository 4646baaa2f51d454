import { afterEach, describe, expect, it } from 'vitest';
import { datasetId, harness, nodeId, observedDataset, report, type Harness } from '../testing/harness.ts';

let h: Harness;
afterEach(async () => h?.close());

const D = datasetId(1);
const E = datasetId(2);

async function cluster(nodes = [1, 2, 3]) {
  h = await harness({ nodeTimeoutMs: 10_000 });
  for (const i of nodes) await h.request('POST', '/v1/drover/agents/report', report(i));
}

const app = (name: string, node: number, dataset?: string, extra: Record<string, unknown> = {}) =>
  h.request('POST', '/v1/configuration/containers', { name, image: 'redis', node_uuid: nodeId(node), ...(dataset ? { volumes: [{ dataset_id: dataset, mountpoint: '/data' }] } : {}), ...extra });

const post = (path: string, body?: unknown) => h.request('POST', path, body ?? {});

describe('cordon and uncordon', () => {
  it('keeps the scheduler from placing anything new on a cordoned node, leaves what runs there, and says so in GET /v1/state/nodes', async () => {
    await cluster([1, 2]);
    await app('old', 1);
    const cordoned = await post(`/v1/drover/nodes/${nodeId(1)}/cordon`);
    expect(cordoned.statusCode).toBe(200);
    expect(cordoned.json()).toMatchObject({ uuid: nodeId(1), cordoned: true, draining: false, applications: ['old'], started: [], cannot_move: [] });
    for (const name of ['a', 'b', 'c']) await h.request('POST', '/v1/configuration/containers', { name, image: 'redis' });
    expect(h.control.desired.applications.map((a) => [a.name, a.node_uuid])).toEqual([['old', nodeId(1)], ['a', nodeId(2)], ['b', nodeId(2)], ['c', nodeId(2)]]);
    const nodes = (await h.request('GET', '/v1/state/nodes')).json();
    expect(nodes.find((n: { uuid: string }) => n.uuid === nodeId(1))).toMatchObject({ cordoned: true, draining: false, applications_left: 1 });
    expect(nodes.find((n: { uuid: string }) => n.uuid === nodeId(2)).cordoned).toBeUndefined();
  });

  it('keeps the cordon across the agent’s reports, and uncordon makes the node schedulable again', async () => {
    await cluster([1, 2]);
    await post(`/v1/drover/nodes/${nodeId(2)}/cordon`);
    await h.request('POST', '/v1/drover/agents/report', report(2, { labels: { zone: 'b' } }));
    expect(h.control.desired.nodes.find((n) => n.uuid === nodeId(2))).toMatchObject({ labels: { zone: 'b' }, cordon: { drain: false } });
    const un = await post(`/v1/drover/nodes/${nodeId(2)}/uncordon`);
    expect(un.json()).toMatchObject({ cordoned: false, draining: false, since: null });
    await h.request('POST', '/v1/configuration/containers', { name: 'a', image: 'redis', placement: { constraints: ['node.labels.zone == b'] } });
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(2));
  });

  it('answers 404 naming an unknown node', async () => {
    await cluster([1]);
    const answer = await post(`/v1/drover/nodes/${nodeId(9)}/cordon`);
    expect(answer.statusCode).toBe(404);
    expect(answer.json()).toMatchObject({ code: 'DROVER_NODE_NOT_FOUND' });
  });

  it('chooses no cordoned node for a new replica, and keeps the replicas a cordoned node holds', async () => {
    await cluster();
    await post(`/v1/drover/nodes/${nodeId(2)}/cordon`);
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: D, replication: { replicas: 1 } });
    expect(h.control.desired.datasets[0]!.replicas).toEqual([nodeId(3)]);
    await post(`/v1/drover/nodes/${nodeId(2)}/uncordon`);
    await h.request('PUT', `/v1/drover/datasets/${D}/replication`, { replicas: 2 });
    await post(`/v1/drover/nodes/${nodeId(3)}/cordon`);
    expect(h.control.desired.datasets[0]!.replicas).toEqual([nodeId(3), nodeId(2)]);
  });
});

describe('drain', () => {
  it('cordons the node and moves its applications off two at a time, starting the next when one ends', async () => {
    await cluster();
    for (const [i, name] of ['a', 'b', 'c'].entries()) {
      await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(10 + i) });
      await app(name, 1, datasetId(10 + i));
    }
    const drained = await post(`/v1/drover/nodes/${nodeId(1)}/drain`);
    expect(drained.statusCode).toBe(200);
    const body = drained.json();
    expect(body).toMatchObject({ cordoned: true, draining: true, applications: ['a', 'b', 'c'], cannot_move: [] });
    expect(body.started.map((m: { application: string; phase: string }) => [m.application, m.phase])).toEqual([['a', 'pending'], ['b', 'pending']]);
    // Spread: the two moves land on different nodes.
    expect(new Set(body.started.map((m: { to: string }) => m.to))).toEqual(new Set([nodeId(2), nodeId(3)]));
    const nodes = (await h.request('GET', '/v1/state/nodes')).json();
    expect(nodes.find((n: { uuid: string }) => n.uuid === nodeId(1))).toMatchObject({ cordoned: true, draining: true, applications_left: 3 });

    const first = body.started[0];
    const step = (phase: string, from: number) => post(`/v1/drover/migrations/${first.id}/update`, { node_uuid: nodeId(from), generation: first.generation, phase });
    for (const phase of ['pre-copy', 'cutover', 'handoff']) expect((await step(phase, 1)).statusCode).toBe(200);
    const to = Number(first.to.slice(-1));
    for (const phase of ['release', 'done']) expect((await step(phase, to)).statusCode).toBe(200);
    const after = (await h.request('GET', `/v1/drover/nodes/${nodeId(1)}/scheduling`)).json();
    expect(after.applications).toEqual(['b', 'c']);
    expect(after.migrations.map((m: { application: string }) => m.application).sort()).toEqual(['b', 'c']);
  });

  it('names what cannot move and why: no other node fits, and a cancelled move is not started again', async () => {
    await cluster([1, 2]);
    await app('pinned', 1, undefined, { placement: { constraints: [`node.uuid == ${nodeId(1)}`] } });
    await app('free', 1);
    const body = (await post(`/v1/drover/nodes/${nodeId(1)}/drain`)).json();
    expect(body.started.map((m: { application: string }) => m.application)).toEqual(['free']);
    expect(body.cannot_move).toEqual([{ application: 'pinned', reason: expect.stringMatching(/is being drained, and no other node fits: fails "node.uuid == .*" \(1 node\)/) }]);
    const cancelled = await post(`/v1/drover/migrations/${body.started[0].id}/cancel`);
    expect(cancelled.statusCode).toBe(200);
    const after = (await h.request('GET', `/v1/drover/nodes/${nodeId(1)}/scheduling`)).json();
    expect(after.migrations).toEqual([]);
    expect(after.cannot_move).toContainEqual({ application: 'free', reason: 'its move failed: cancelled by the operator; drain again to retry' });
    // Draining again (later) tries it again.
    h.clock.advance(1_000);
    expect((await post(`/v1/drover/nodes/${nodeId(1)}/drain`)).json().started.map((m: { application: string }) => m.application)).toEqual(['free']);
  });

  it('counts the instances placed on the node as left until they leave, without naming them as unable to move', async () => {
    await cluster();
    await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'httpd', instances: 3 });
    const mine = (h.control.desired.applications[0]!.placed ?? []).filter((i) => i.node_uuid === nodeId(1)).map((i) => `web.${i.id}`);
    expect(mine).toHaveLength(1);
    const body = (await post(`/v1/drover/nodes/${nodeId(1)}/drain`)).json();
    expect(body).toMatchObject({ draining: true, applications: mine, started: [], cannot_move: [] });
    const nodes = (await h.request('GET', '/v1/state/nodes')).json();
    expect(nodes.find((n: { uuid: string }) => n.uuid === nodeId(1))).toMatchObject({ draining: true, applications_left: 1 });
    // Once drained it is gone from the configuration, and from what is left.
    await h.control.change((d) => ({ ...d, applications: d.applications.map((a) => ({ ...a, placed: (a.placed ?? []).filter((i) => i.node_uuid !== nodeId(1)) })) }));
    expect((await h.request('GET', `/v1/drover/nodes/${nodeId(1)}/scheduling`)).json().applications).toEqual([]);
  });

  it('replaces the replicas a draining node holds', async () => {
    await cluster();
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: D, replication: { replicas: 1 } });
    expect(h.control.desired.datasets[0]!.replicas).toEqual([nodeId(2)]);
    await post(`/v1/drover/nodes/${nodeId(2)}/drain`);
    expect(h.control.desired.datasets[0]!.replicas).toEqual([nodeId(3)]);
  });
});

describe('a forced move (source silent)', () => {
  /** A drover snapshot taken 2 s before the harness's epoch (2027-01-15T08:00:00Z). */
  const copy = (id: string) => observedDataset(id, { writable: false, snapshots: [{ name: 'drover-20270115T075958000Z-1', guid: '1', createtxg: 1 }] });

  /** db on node 1 with dataset D replicated to node 2 (which reports a copy 2 s old); node 1 then falls silent for `silentS` seconds. */
  async function silentSource(silentS: number, options: { replicas?: number } = {}) {
    await cluster();
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: D, ...(options.replicas === 0 ? {} : { replication: { replicas: options.replicas ?? 1 } }) });
    await app('db', 1, D);
    h.clock.advance(silentS * 1000);
    await h.request('POST', '/v1/drover/agents/report', report(2, { datasets: options.replicas === 0 ? [] : [copy(D)] }));
    await h.request('POST', '/v1/drover/agents/report', report(3));
  }
  const force = (to: number, extra: Record<string, unknown> = {}) => post('/v1/drover/applications/db/move', { node_uuid: nodeId(to), force: true, ...extra });

  it('is refused without --force while the source is silent, naming the silence', async () => {
    await silentSource(12);
    const answer = await post('/v1/drover/applications/db/move', { node_uuid: nodeId(2) });
    expect(answer.statusCode).toBe(409);
    expect(answer.json()).toMatchObject({ code: 'DROVER_NODE_SILENT', description: expect.stringContaining('source node 127.0.0.11 has been silent for 12 s (unknown)') });
  });

  it('promotes the replica on the target: the application and its dataset flip there in one write, with a fencing generation, in handoff', async () => {
    await silentSource(12);
    const answer = await force(2);
    expect(answer.statusCode).toBe(202);
    const { application, migration } = answer.json();
    expect(application).toMatchObject({ name: 'db', node_uuid: nodeId(2) });
    expect(migration).toMatchObject({ application: 'db', from: nodeId(1), to: nodeId(2), phase: 'done', dataset_ids: [D], failover: { snapshot_age_seconds: 14, failed_silent_ms: 12_000 } });
    expect(migration.generation).toBeGreaterThan(0);
    const dataset = h.control.desired.datasets[0]!;
    expect(dataset.primary).toBe(nodeId(2));
    expect(dataset.replicas).not.toContain(nodeId(2));
    expect(migration.failover.snapshots).toEqual([{ dataset_id: D, snapshot: 'drover-20270115T075958000Z-1', created_at: 1_799_999_998_000 }]);
  });

  it('is refused, naming why, when the dataset has no replica', async () => {
    await silentSource(12, { replicas: 0 });
    const answer = await force(2);
    expect(answer.statusCode).toBe(409);
    expect(answer.json()).toMatchObject({ code: 'DROVER_FORCE_REFUSED', description: expect.stringContaining(`dataset ${D} has no replica — its only copy is on the silent node 127.0.0.11`) });
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(1));
  });

  it('is refused when the target holds no copy, naming where the copies are', async () => {
    await silentSource(12);
    const answer = await force(3);
    expect(answer.statusCode).toBe(409);
    expect(answer.json()).toMatchObject({ code: 'DROVER_FORCE_REFUSED', description: expect.stringContaining('it holds no copy of dataset') });
    expect(answer.json().description).toContain('copies are on 127.0.0.12 (14s old)');
  });

  it('is refused while the source reports: a live move loses nothing', async () => {
    await silentSource(0);
    await h.request('POST', '/v1/drover/agents/report', report(1));
    const answer = await force(2);
    // The source reports: the ordinary live move starts.
    expect(answer.statusCode).toBe(202);
    expect(answer.json().migration).toMatchObject({ phase: 'pending' });
    expect(answer.json().migration.failover).toBeUndefined();
  });

  it('needs the data window named when the newest copy is older than the threshold, and takes it when the window is covered', async () => {
    await silentSource(310);
    const refused = await force(2);
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'DROVER_DATA_LOSS_NOT_ACCEPTED', detail: { window_seconds: 312, window: '5m12s', threshold_seconds: 60 } });
    expect(refused.json().description).toContain('loses whatever 127.0.0.11 wrote in those 5m12s');
    expect(refused.json().description).toContain('--accept-data-loss 5m12s');
    const short = await force(2, { accept_data_loss: '5m' });
    expect(short.json()).toMatchObject({ code: 'DROVER_DATA_LOSS_NOT_ACCEPTED', description: expect.stringContaining('--accept-data-loss 5m0s does not cover it') });
    expect((await force(2, { accept_data_loss: 'soon' })).statusCode).toBe(400);
    const taken = await force(2, { accept_data_loss: '5m12s' });
    expect(taken.statusCode).toBe(202);
    expect(taken.json().migration.failover).toMatchObject({ snapshot_age_seconds: 312 });
  });

  it('honours a threshold given with the request', async () => {
    await silentSource(12);
    const refused = await force(2, { data_loss_threshold_seconds: 5 });
    expect(refused.json()).toMatchObject({ code: 'DROVER_DATA_LOSS_NOT_ACCEPTED', detail: { window: '14s' } });
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import type { Migration } from '#common/model.ts';
import { container, datasetId, harness, nodeId, observedDataset, report, type Harness } from '../testing/harness.ts';

let h: Harness;
afterEach(async () => h?.close());

async function cluster(nodes = 2) {
  h = await harness();
  for (let i = 1; i <= nodes; i++) await h.request('POST', '/v1/drover/agents/report', report(i));
}

const desiredOf = async (i: number, query = '') => (await h.request('GET', `/v1/drover/agents/${nodeId(i)}/desired${query}`)).json();
const step = (m: Migration, node: number, phase: string, extra: Record<string, unknown> = {}) =>
  h.request('POST', `/v1/drover/migrations/${m.id}/update`, { node_uuid: nodeId(node), generation: m.generation, phase, ...extra });

/** An application `web` with dataset 1 on node 1, moving to node 2: the pending migration. */
async function moving(): Promise<Migration> {
  await cluster();
  await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
  await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'nginx', node_uuid: nodeId(1), ports: [{ internal: 80, external: 8080 }], volumes: [{ dataset_id: datasetId(1), mountpoint: '/data' }] });
  return (await h.request('POST', '/v1/configuration/containers/web', { node_uuid: nodeId(2) })).json().migration;
}

describe('agent reports', () => {
  it('registers a node from its first report, and refreshes its labels later', async () => {
    await cluster(1);
    expect(h.control.desired.nodes).toEqual([{ uuid: nodeId(1), host: '127.0.0.11', labels: {}, transfer: {} }]);
    const version = h.control.snapshot.version;
    await h.request('POST', '/v1/drover/agents/report', report(1));
    expect(h.control.snapshot.version).toBe(version);
    await h.request('POST', '/v1/drover/agents/report', report(1, { labels: { disk: 'ssd' } }));
    expect(h.control.desired.nodes[0]!.labels).toEqual({ disk: 'ssd' });
  });

  it('takes a word-for-word repeat of the last report as a sign of life', async () => {
    await cluster(1);
    const same = report(1, { containers: [container('web')] });
    await h.request('POST', '/v1/drover/agents/report', same);
    for (let i = 0; i < 3; i++) {
      h.clock.advance(10_000);
      expect((await h.request('POST', '/v1/drover/agents/report', same)).statusCode).toBe(200);
      h.control.tick();
    }
    expect((await h.request('GET', '/v1/state/nodes')).json()[0].state).toBe('known');
    expect((await h.request('GET', '/v1/state/containers')).json()).toEqual([expect.objectContaining({ name: 'web' })]);
  });

  it('refuses a report that is not JSON with 400', async () => {
    await cluster(1);
    const answer = await h.request('POST', '/v1/drover/agents/report', '{"uuid": "00000001-0000-4000-8000-000000000001", ');
    expect(answer.statusCode).toBe(400);
    expect(answer.json().description).toBe('The body is not valid JSON.');
  });

  it('refuses a malformed report with 400 naming the paths', async () => {
    await cluster(1);
    const bad = { ...report(1), host: 'node-1', containers: [{ ...container('web'), running: 'yes' }] };
    const answer = await h.request('POST', '/v1/drover/agents/report', bad);
    expect(answer.statusCode).toBe(400);
    expect(answer.json().errors).toEqual([expect.stringMatching(/^host: /), expect.stringMatching(/^containers\.0\.running: /)]);
  });

  it('shows a node that stops reporting as unknown, keeping its containers', async () => {
    await cluster(1);
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('web')] }));
    h.clock.advance(14_000);
    h.control.tick();
    expect((await h.request('GET', '/v1/state/nodes')).json()).toEqual([expect.objectContaining({ uuid: nodeId(1), state: 'known' })]);
    h.clock.advance(2_000);
    h.control.tick();
    expect((await h.request('GET', '/v1/state/nodes')).json()).toEqual([expect.objectContaining({ uuid: nodeId(1), host: '127.0.0.11', state: 'unknown', era: 'era-1' })]);
    expect((await h.request('GET', '/v1/state/containers')).json()).toEqual([expect.objectContaining({ name: 'web', running: true, node_state: 'unknown' })]);
    await h.request('POST', '/v1/drover/agents/report', report(1));
    expect((await h.request('GET', '/v1/state/nodes')).json()[0].state).toBe('known');
  });

  it('finds a node by its era, and answers 404 for an era nobody reported', async () => {
    await cluster(1);
    expect((await h.request('GET', '/v1/state/nodes/by_era/era-1')).json()).toEqual({ uuid: nodeId(1) });
    const missing = await h.request('GET', '/v1/state/nodes/by_era/era-9');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().description).toBe('No node found with given era.');
  });
});

describe('desired view of one agent', () => {
  it('holds what concerns the node: its applications, their datasets and leases, and every node', async () => {
    await cluster();
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(2), dataset_id: datasetId(2) });
    await h.request('POST', '/v1/configuration/containers', { name: 'a', image: 'x', node_uuid: nodeId(1), volumes: [{ dataset_id: datasetId(1), mountpoint: '/d' }] });
    await h.request('POST', '/v1/configuration/containers', { name: 'b', image: 'x', node_uuid: nodeId(2) });
    await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: null });
    const view = await desiredOf(1);
    expect(view.node.uuid).toBe(nodeId(1));
    expect(view.nodes.map((n: { uuid: string }) => n.uuid)).toEqual([nodeId(1), nodeId(2)]);
    expect(view.applications.map((a: { name: string }) => a.name)).toEqual(['a']);
    expect(view.datasets.map((d: { dataset_id: string }) => d.dataset_id)).toEqual([datasetId(1)]);
    expect(view.leases).toHaveLength(1);
    expect(view.migrations).toEqual([]);
  });

  it('includes a dataset the node holds but is not primary for (so it sees a tombstone)', async () => {
    await cluster();
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(2), dataset_id: datasetId(5) });
    expect((await desiredOf(1)).datasets).toEqual([]);
    await h.request('POST', '/v1/drover/agents/report', report(1, { datasets: [observedDataset(datasetId(5), { writable: false })] }));
    await h.request('DELETE', `/v1/configuration/datasets/${datasetId(5)}`);
    expect((await desiredOf(1)).datasets).toEqual([expect.objectContaining({ dataset_id: datasetId(5), deleted: true })]);
  });

  it('shows a migration, and its application, to both of its nodes', async () => {
    const m = await moving();
    const target = await desiredOf(2);
    expect(target.migrations.map((x: Migration) => x.id)).toEqual([m.id]);
    expect(target.applications.map((a: { name: string }) => a.name)).toEqual(['web']);
    expect(target.datasets.map((d: { dataset_id: string }) => d.dataset_id)).toEqual([datasetId(1)]);
    expect((await desiredOf(1)).migrations.map((x: Migration) => x.id)).toEqual([m.id]);
  });

  it('answers a long-poll at once when the version differs, and waits when it is current', async () => {
    await cluster();
    const first = await desiredOf(1);
    const stale = await desiredOf(1, `?after=${first.version - 1}&wait_ms=5000`);
    expect(stale.version).toBe(first.version);
    const started = Date.now();
    const same = await desiredOf(1, `?after=${first.version}&wait_ms=150`);
    expect(same.version).toBe(first.version);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it("answers a waiting long-poll when the node's part changes, not when another node's does", async () => {
    await cluster();
    const v1 = (await desiredOf(1)).version;
    const v2 = (await desiredOf(2)).version;
    const poll1 = desiredOf(1, `?after=${v1}&wait_ms=3000`);
    let answered2 = false;
    const poll2 = desiredOf(2, `?after=${v2}&wait_ms=400`).then((v) => {
      answered2 = true;
      return v;
    });
    await new Promise((r) => setTimeout(r, 20));
    await h.request('POST', '/v1/configuration/containers', { name: 'a', image: 'x', node_uuid: nodeId(1) });
    const got = await poll1;
    expect(got.version).toBeGreaterThan(v1);
    expect(got.applications.map((a: { name: string }) => a.name)).toEqual(['a']);
    expect(answered2).toBe(false);
    expect((await poll2).version).toBe(v2);
  });
});

describe('migration updates', () => {
  it('walks the legal phases, each from the node whose turn it is, and flips placement at handoff', async () => {
    const m = await moving();
    expect((await step(m, 1, 'pre-copy', { round: 1, bytes_sent: 100, bytes_total: 1000 })).json()).toMatchObject({ phase: 'pre-copy', round: 1, bytes_sent: 100 });
    expect((await step(m, 1, 'pre-copy', { round: 2, bytes_sent: 900 })).json()).toMatchObject({ phase: 'pre-copy', round: 2, bytes_sent: 900, bytes_total: 1000 });
    expect((await step(m, 1, 'cutover')).json().cutover_started_at).toBe(h.clock.now());
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(1));
    h.clock.advance(800);
    await step(m, 1, 'handoff');
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(2));
    expect(h.control.desired.datasets[0]!.primary).toBe(nodeId(2));
    expect((await step(m, 2, 'release')).json()).toMatchObject({ phase: 'release', cutover_ms: 800 });
    expect((await step(m, 2, 'done')).json().phase).toBe('done');
    expect((await step(m, 2, 'done')).statusCode).toBe(200);
    expect((await h.request('GET', `/v1/drover/migrations/${m.id}`)).json().phase).toBe('done');
  });

  it('refuses a stale generation with 409 and changes nothing', async () => {
    const m = await moving();
    const tag = h.control.snapshot.tag;
    const answer = await h.request('POST', `/v1/drover/migrations/${m.id}/update`, { node_uuid: nodeId(1), generation: m.generation - 1, phase: 'pre-copy' });
    expect(answer.statusCode).toBe(409);
    expect(answer.json().code).toBe('DROVER_MIGRATION_STALE_GENERATION');
    expect(h.control.snapshot.tag).toBe(tag);
  });

  it('refuses a step from the wrong node, and an illegal transition, with 409', async () => {
    const m = await moving();
    expect((await step(m, 2, 'pre-copy')).json().code).toBe('DROVER_MIGRATION_WRONG_NODE');
    expect((await step(m, 1, 'handoff')).json().code).toBe('DROVER_MIGRATION_BAD_TRANSITION');
    await step(m, 1, 'pre-copy');
    await step(m, 1, 'cutover');
    await step(m, 1, 'handoff');
    expect((await step(m, 1, 'failed')).json().code).toBe('DROVER_MIGRATION_BAD_TRANSITION');
    expect((await step(m, 1, 'release')).json().code).toBe('DROVER_MIGRATION_WRONG_NODE');
  });

  it('fails a migration from cutover and leaves the application on the source', async () => {
    const m = await moving();
    await step(m, 1, 'pre-copy');
    await step(m, 1, 'cutover');
    expect((await step(m, 1, 'failed', { error: 'transfer cut' })).json()).toMatchObject({ phase: 'failed', error: 'transfer cut' });
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(1));
    expect((await step(m, 1, 'pre-copy')).statusCode).toBe(409);
  });

  it('gives a later move of the same application a higher generation, fencing the earlier one', async () => {
    const m = await moving();
    await step(m, 1, 'pre-copy');
    await step(m, 1, 'failed');
    const again = (await h.request('POST', '/v1/configuration/containers/web', { node_uuid: nodeId(2) })).json().migration;
    expect(again.generation).toBeGreaterThan(m.generation);
    expect((await h.request('POST', `/v1/drover/migrations/${again.id}/update`, { node_uuid: nodeId(1), generation: m.generation, phase: 'pre-copy' })).statusCode).toBe(409);
  });

  it('answers 404 for an unknown migration and 400 for a bad phase', async () => {
    await moving();
    const missing = await h.request('POST', `/v1/drover/migrations/${datasetId(99)}/update`, { node_uuid: nodeId(1), generation: 1, phase: 'pre-copy' });
    expect(missing.statusCode).toBe(404);
    const bad = await h.request('POST', `/v1/drover/migrations/${datasetId(99)}/update`, { node_uuid: nodeId(1), generation: 1, phase: 'teleport' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors).toEqual([expect.stringMatching(/^phase: /)]);
  });
});

describe('route table', () => {
  const routes = async () => (await h.request('GET', '/v1/drover/routes')).json();

  it('leads each external port to the node the application runs on and the host port its agent published', async () => {
    const m = await moving();
    expect((await routes()).routes).toEqual([{ application: 'web', external_port: 8080, target: null, hold: false, generation: m.generation, migration: m.id }]);
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('web', { published: [{ internal: 80, host: '127.0.0.11', host_port: 32001 }] })] }));
    expect((await routes()).routes[0]).toMatchObject({ target: { host: '127.0.0.11', port: 32001, node_uuid: nodeId(1) }, hold: false });
  });

  it('holds during cutover and handoff until the target runs the application, then leads there', async () => {
    const m = await moving();
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('web', { published: [{ internal: 80, host: '127.0.0.11', host_port: 32001 }] })] }));
    await step(m, 1, 'pre-copy');
    const before = await routes();
    await step(m, 1, 'cutover');
    const held = await routes();
    expect(held.version).toBeGreaterThan(before.version);
    expect(held.routes[0]).toMatchObject({ hold: true, target: { node_uuid: nodeId(1) } });
    await step(m, 1, 'handoff');
    expect((await routes()).routes[0]).toMatchObject({ hold: true, target: null });
    await h.request('POST', '/v1/drover/agents/report', report(2, { containers: [container('web', { running: true, published: [{ internal: 80, host: '127.0.0.12', host_port: 32002 }] })] }));
    expect((await routes()).routes[0]).toMatchObject({ hold: false, target: { host: '127.0.0.12', port: 32002, node_uuid: nodeId(2) } });
  });

  it('tells whether every live proxy acked a route table version', async () => {
    await cluster();
    const { version } = await routes();
    expect((await h.request('GET', `/v1/drover/routes/acks?version=${version}`)).json()).toMatchObject({ acked: true, waiting_for: [] });
    await h.request('POST', '/v1/drover/routes/ack', { node_uuid: nodeId(1), version: version - 1 });
    await h.request('POST', '/v1/drover/routes/ack', { node_uuid: nodeId(2), version });
    expect((await h.request('GET', `/v1/drover/routes/acks?version=${version}`)).json()).toMatchObject({ acked: false, waiting_for: [nodeId(1)] });
    await h.request('POST', '/v1/drover/routes/ack', { node_uuid: nodeId(1), version });
    expect((await h.request('GET', `/v1/drover/routes/acks?version=${version}`)).json().acked).toBe(true);
    h.clock.advance(60_000);
    expect((await h.request('GET', `/v1/drover/routes/acks?version=${version + 1}`)).json()).toMatchObject({ acked: true, waiting_for: [] });
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { container, datasetId, harness, nodeId, report, type Harness } from '../testing/harness.ts';

let h: Harness;
afterEach(async () => h?.close());

async function refused(status: number, method: 'POST' | 'DELETE', url: string, body?: unknown) {
  const before = h.control.snapshot;
  const answer = await h.request(method, url, body);
  expect(answer.statusCode, answer.body).toBe(status);
  expect(h.control.snapshot.tag).toBe(before.tag);
  return answer.json();
}

async function twoNodes() {
  h = await harness();
  await h.request('POST', '/v1/drover/agents/report', report(1));
  await h.request('POST', '/v1/drover/agents/report', report(2));
}

const web = (extra: Record<string, unknown> = {}) => ({ name: 'web', image: 'nginx:1.27', node_uuid: nodeId(1), ports: [{ internal: 80, external: 8080 }], ...extra });

describe('/v1/configuration/containers', () => {
  it('adds a container with defaults applied and lists it', async () => {
    await twoNodes();
    const created = await h.request('POST', '/v1/configuration/containers', web({ environment: { A: 'b' }, swappiness: 10 }));
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ name: 'web', node_uuid: nodeId(1), environment: { A: 'b' }, volumes: [], links: [], restart_policy: { name: 'never' }, swappiness: 10 });
    expect((await h.request('GET', '/v1/configuration/containers')).json()).toEqual([created.json()]);
  });

  it('keeps a move hook, with its default timeout', async () => {
    await twoNodes();
    const created = await h.request('POST', '/v1/configuration/containers', web({ move: { before_stop: { command: ['psql', '-c', 'CHECKPOINT'] } } }));
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().move).toEqual({ before_stop: { command: ['psql', '-c', 'CHECKPOINT'], timeout_seconds: 60 } });
  });

  it("keeps a tcp health check's send and expect", async () => {
    await twoNodes();
    const check = { type: 'tcp', port: 6379, send: 'PING\r\n', expect: '+PONG' };
    const created = await h.request('POST', '/v1/configuration/containers', web({ health_check: check }));
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().health_check).toEqual({ ...check, initial_delay_seconds: 0, period_seconds: 10, timeout_seconds: 1, failure_threshold: 3 });
  });

  it.each([
    ['a wrong type', web({ ports: [{ internal: '80', external: 8080 }] }), 'ports.0.internal: Invalid input: expected number, received string'],
    ['an unknown field', web({ privileged: true }), 'privileged: unknown field'],
    ['a bad node UUID', web({ node_uuid: '1234' }), 'node_uuid: must be a lower-case UUID'],
    ['a bad volume dataset UUID', web({ volumes: [{ dataset_id: 'x', mountpoint: '/data' }] }), 'volumes.0.dataset_id: must be a lower-case UUID'],
    ['a relative mountpoint', web({ volumes: [{ dataset_id: datasetId(1), mountpoint: 'data' }] }), 'volumes.0.mountpoint: must be an absolute path'],
    ['a bad restart policy', web({ restart_policy: { name: 'sometimes' } }), 'restart_policy.name: Invalid'],
    ['an out-of-range port', web({ ports: [{ internal: 80, external: 70000 }] }), 'ports.0.external: Too big: expected number to be <=65535'],
    ['an empty tcp health check expect', web({ health_check: { type: 'tcp', port: 80, expect: '' } }), 'health_check.expect: Too small: expected string to have >=1 characters'],
    ['a tcp health check send over 1024 characters', web({ health_check: { type: 'tcp', port: 80, send: 'x'.repeat(1025) } }), 'health_check.send: Too big: expected string to have <=1024 characters'],
    ['send on an http health check', web({ health_check: { type: 'http', port: 80, send: 'x' } }), 'health_check.send: unknown field'],
    ['an empty before_stop command', web({ move: { before_stop: { command: [] } } }), 'move.before_stop.command: Too small'],
    ['a before_stop timeout of 0', web({ move: { before_stop: { command: ['true'], timeout_seconds: 0 } } }), 'move.before_stop.timeout_seconds: Too small'],
    ['an unknown move hook', web({ move: { after_start: { command: ['true'] } } }), 'move.after_start: unknown field'],
  ])('refuses %s with 400 naming the path and changes nothing', async (_what, body, error) => {
    await twoNodes();
    const answer = await refused(400, 'POST', '/v1/configuration/containers', body);
    expect(answer.errors).toEqual([expect.stringContaining(error)]);
  });

  it('refuses a constraint drover does not understand with 400 naming the path', async () => {
    await twoNodes();
    const answer = await refused(400, 'POST', '/v1/configuration/containers', web({ node_uuid: undefined, placement: { constraints: ['engine.labels.x == y'] } }));
    expect(answer.errors).toEqual([expect.stringMatching(/^applications\.0\.placement\.constraints\.0: "engine\.labels\.x == y" is not a constraint/)]);
  });

  it("answers Flocker's 409s: name in use, external port in use, duplicate link alias or local port", async () => {
    await twoNodes();
    await h.request('POST', '/v1/configuration/containers', web());
    expect((await refused(409, 'POST', '/v1/configuration/containers', web({ ports: [] }))).description).toBe('The container name already exists.');
    expect((await refused(409, 'POST', '/v1/configuration/containers', web({ name: 'other' }))).code).toBe('DROVER_PORT_IN_USE');
    const links = [
      { alias: 'db', local_port: 5432, remote_port: 5432 },
      { alias: 'db', local_port: 5433, remote_port: 5432 },
    ];
    expect((await refused(409, 'POST', '/v1/configuration/containers', { name: 'l', image: 'x', node_uuid: nodeId(1), links })).description).toBe('Link aliases must be unique.');
    const ports = [
      { alias: 'a', local_port: 5432, remote_port: 5432 },
      { alias: 'b', local_port: 5432, remote_port: 5433 },
    ];
    expect((await refused(409, 'POST', '/v1/configuration/containers', { name: 'l', image: 'x', node_uuid: nodeId(1), links: ports })).code).toBe('DROVER_LINK_PORT_IN_USE');
  });

  it('refuses a volume whose dataset is missing (404), on another node or used by another container (409)', async () => {
    await twoNodes();
    const volume = { dataset_id: datasetId(1), mountpoint: '/data' };
    expect((await refused(404, 'POST', '/v1/configuration/containers', web({ volumes: [volume] }))).description).toBe('Dataset not found.');
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(2), dataset_id: datasetId(1) });
    expect((await refused(409, 'POST', '/v1/configuration/containers', web({ volumes: [volume] }))).description).toBe('The dataset is on another node.');
    expect((await h.request('POST', '/v1/configuration/containers', { name: 'db', image: 'redis', node_uuid: nodeId(2), volumes: [volume] })).statusCode).toBe(201);
    expect((await refused(409, 'POST', '/v1/configuration/containers', web({ node_uuid: nodeId(2), volumes: [volume] }))).code).toBe('DROVER_DATASET_IN_USE');
  });

  it('moves a container with its datasets as a migration; node_uuid stays until handoff', async () => {
    await twoNodes();
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
    await h.request('POST', '/v1/configuration/containers', web({ volumes: [{ dataset_id: datasetId(1), mountpoint: '/data' }] }));
    const moved = await h.request('POST', '/v1/configuration/containers/web', { node_uuid: nodeId(2) });
    expect(moved.statusCode).toBe(200);
    expect(moved.json()).toMatchObject({ name: 'web', node_uuid: nodeId(1), migration: { application: 'web', dataset_ids: [datasetId(1)], from: nodeId(1), to: nodeId(2), phase: 'pending' } });
    expect(moved.json().migration.generation).toBe(h.control.snapshot.version);
  });

  it('moving to where it already is changes nothing', async () => {
    await twoNodes();
    await h.request('POST', '/v1/configuration/containers', web());
    const before = h.control.snapshot.version;
    const moved = await h.request('POST', '/v1/configuration/containers/web', { node_uuid: nodeId(1) });
    expect(moved.json()).toMatchObject({ node_uuid: nodeId(1), migration: null });
    expect(h.control.snapshot.version).toBe(before);
  });

  it('refuses a move to a node that never registered (404), and a second move elsewhere while moving (409)', async () => {
    await twoNodes();
    await h.request('POST', '/v1/drover/agents/report', report(3));
    await h.request('POST', '/v1/configuration/containers', web());
    expect((await refused(404, 'POST', '/v1/configuration/containers/web', { node_uuid: nodeId(9) })).code).toBe('DROVER_NODE_NOT_FOUND');
    await h.request('POST', '/v1/configuration/containers/web', { node_uuid: nodeId(2) });
    expect((await refused(409, 'POST', '/v1/configuration/containers/web', { node_uuid: nodeId(3) })).code).toBe('DROVER_MIGRATION_ACTIVE');
  });

  it('refuses to move a container whose dataset is leased to its node (409 naming the lease)', async () => {
    await twoNodes();
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
    await h.request('POST', '/v1/configuration/containers', web({ volumes: [{ dataset_id: datasetId(1), mountpoint: '/data' }] }));
    await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: 60 });
    const answer = await refused(409, 'POST', '/v1/configuration/containers/web', { node_uuid: nodeId(2) });
    expect(answer.code).toBe('DROVER_LEASE_HELD');
    expect(answer.description).toMatch(/leased to node 00000001-0000-4000-8000-000000000001 for 60 s more/);
  });

  it('removes a container and keeps its datasets; 404 for an unknown one', async () => {
    await twoNodes();
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
    await h.request('POST', '/v1/configuration/containers', web({ volumes: [{ dataset_id: datasetId(1), mountpoint: '/data' }] }));
    const removed = await h.request('DELETE', '/v1/configuration/containers/web');
    expect(removed.statusCode).toBe(200);
    expect(removed.body).toBe('');
    expect(h.control.desired.applications).toEqual([]);
    expect(h.control.desired.datasets).toHaveLength(1);
    expect((await refused(404, 'DELETE', '/v1/configuration/containers/web')).description).toBe('Container not found.');
  });

  it('refuses to remove a container in the middle of a move, but abandons a move not yet started', async () => {
    await twoNodes();
    await h.request('POST', '/v1/configuration/containers', web());
    const m = (await h.request('POST', '/v1/configuration/containers/web', { node_uuid: nodeId(2) })).json().migration;
    await h.request('POST', `/v1/drover/migrations/${m.id}/update`, { node_uuid: nodeId(1), generation: m.generation, phase: 'pre-copy' });
    expect((await refused(409, 'DELETE', '/v1/configuration/containers/web')).code).toBe('DROVER_MIGRATION_ACTIVE');

    await h.request('POST', '/v1/configuration/containers', { name: 'other', image: 'x', node_uuid: nodeId(1) });
    const n = (await h.request('POST', '/v1/configuration/containers/other', { node_uuid: nodeId(2) })).json().migration;
    expect((await h.request('DELETE', '/v1/configuration/containers/other')).statusCode).toBe(200);
    expect(h.control.desired.migrations.find((x) => x.id === n.id)).toMatchObject({ phase: 'failed', error: 'the application was deleted' });
  });
});

describe('/v1/state/containers', () => {
  it("lists containers where agents see them, with the node's state", async () => {
    await twoNodes();
    await h.request('POST', '/v1/configuration/containers', web());
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('web', { image: 'nginx:1.27', published: [{ internal: 80, host: '127.0.0.11', host_port: 32768 }] })] }));
    const states = (await h.request('GET', '/v1/state/containers')).json();
    expect(states).toEqual([
      expect.objectContaining({ name: 'web', node_uuid: nodeId(1), image: 'nginx:1.27', running: true, node_state: 'known', ports: [{ internal: 80, external: 8080 }], published: [{ internal: 80, host: '127.0.0.11', host_port: 32768 }] }),
    ]);
  });
});

import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryConfigStore } from '../store/memory-store.ts';
import type { StoreSnapshot, Updater } from '../store/config-store.ts';
import { container, harness, nodeId, report, type Harness } from '../testing/harness.ts';

let h: Harness;
afterEach(async () => h?.close());

async function cluster(labels: Record<number, Record<string, string>> = {}) {
  h = await harness();
  for (const i of [1, 2]) await h.request('POST', '/v1/drover/agents/report', report(i, { labels: labels[i] ?? {} }));
}

const compose = (services: string) => ({ file: 'compose.yml', text: `services:\n${services}` });
const topology = (nodes: string) => ({ file: 'topology.yml', text: `version: 1\nnodes:\n${nodes}` });

describe('/v1/version and /v1/drover/openapi.json', () => {
  it('answers the API version', async () => {
    h = await harness();
    expect((await h.request('GET', '/v1/version')).json()).toEqual({ flocker: '1.15.0', drover: '0.0.0-test' });
  });

  it('serves an OpenAPI document of every route, built from the zod schemas', async () => {
    h = await harness();
    const doc = (await h.request('GET', '/v1/drover/openapi.json')).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/configuration/datasets', '/v1/configuration/datasets/{dataset_id}', '/v1/drover/agents/{node_uuid}/desired', '/v1/drover/deploy']));
    const create = doc.paths['/v1/configuration/datasets'].post;
    expect(create.requestBody.content['application/json'].schema.required).toEqual(['primary']);
    expect(create.responses['409']).toBeDefined();
    expect(doc.paths['/v1/configuration/datasets/{dataset_id}'].delete.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'dataset_id', in: 'path', required: true })]));
  });
});

describe('/v1/drover/applications', () => {
  it('shows where each application runs, its state, and why one is not placed', async () => {
    await cluster({ 1: { disk: 'hdd' }, 2: { disk: 'hdd' } });
    await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'nginx', node_uuid: nodeId(1) });
    await h.request('POST', '/v1/configuration/containers', { name: 'db', image: 'redis', placement: { constraints: ['node.labels.disk == ssd'] } });
    await h.request('POST', '/v1/drover/agents/report', report(1, { labels: { disk: 'hdd' }, containers: [container('web', { health: 'healthy' })] }));
    const statuses = (await h.request('GET', '/v1/drover/applications')).json();
    expect(statuses).toEqual([
      { name: 'web', project: null, image: 'nginx', node_uuid: nodeId(1), state: 'running', health: 'healthy', unschedulable_reason: null, migration: null, replicas: [], node_state: 'known', node_silent_ms: 0, last_error: null },
      { name: 'db', project: null, image: 'redis', node_uuid: null, state: 'unplaced', health: null, unschedulable_reason: 'no node fits: fails "node.labels.disk == ssd" (2 nodes)', migration: null, replicas: [], node_state: null, node_silent_ms: null, last_error: null },
    ]);
    expect((await h.request('GET', '/v1/drover/applications/db')).json().state).toBe('unplaced');
    // A container that keeps exiting: status says why it is stopped, not only that it is.
    const crashing = { subject: 'container:drover-web', kind: 'blocked', reason: 'exited with code 1; restarting after backoff' } as const;
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('web', { running: false })], problems: [crashing] }));
    expect((await h.request('GET', '/v1/drover/applications/web')).json()).toMatchObject({ state: 'stopped', last_error: 'exited with code 1; restarting after backoff on 127.0.0.11' });
    const done = { ...crashing, reason: 'exited with code 0; restart policy is never' };
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('web', { running: false })], problems: [done] }));
    expect((await h.request('GET', '/v1/drover/applications/web')).json()).toMatchObject({ state: 'stopped', last_error: null });
    expect((await h.request('GET', '/v1/drover/applications/nope')).statusCode).toBe(404);
  });

  it('places an unplaced application when a node that fits registers', async () => {
    await cluster();
    await h.request('POST', '/v1/configuration/containers', { name: 'db', image: 'redis', placement: { constraints: ['node.labels.disk == ssd'] } });
    expect(h.control.desired.applications[0]!.node_uuid).toBeUndefined();
    await h.request('POST', '/v1/drover/agents/report', report(3, { labels: { disk: 'ssd' } }));
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(3));
    expect((await h.request('GET', '/v1/drover/applications/db')).json()).toMatchObject({ node_uuid: nodeId(3), unschedulable_reason: null });
  });

  it('moves an application: 202 with a migration, 200 when it is already there', async () => {
    await cluster();
    await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'nginx', node_uuid: nodeId(1) });
    const moved = await h.request('POST', '/v1/drover/applications/web/move', { node_uuid: nodeId(2) });
    expect(moved.statusCode).toBe(202);
    expect(moved.json()).toMatchObject({ application: { name: 'web', node_uuid: nodeId(1) }, migration: { phase: 'pending', from: nodeId(1), to: nodeId(2) } });
    expect((await h.request('GET', '/v1/drover/migrations')).json()).toEqual([moved.json().migration]);
    expect((await h.request('GET', `/v1/drover/migrations/${moved.json().migration.id}`)).json()).toEqual(moved.json().migration);
    const home = await h.request('POST', '/v1/drover/applications/web/move', { node_uuid: nodeId(1) });
    expect(home.statusCode).toBe(409);
    expect((await h.request('GET', '/v1/drover/applications/web')).json().migration.id).toBe(moved.json().migration.id);
  });

  it('starts a move in the CLI form, POST /v1/drover/migrations', async () => {
    await cluster();
    await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'nginx', node_uuid: nodeId(1) });
    const started = await h.request('POST', '/v1/drover/migrations', { application: 'web', to: nodeId(2) });
    expect(started.statusCode).toBe(201);
    expect(started.json()).toMatchObject({ application: 'web', to: nodeId(2), phase: 'pending' });
    const bad = await h.request('POST', '/v1/drover/migrations', { application: 'web', to: 'n2', force: true });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors).toEqual(['to: must be a lower-case UUID', 'force: unknown field']);
  });
});

describe('/v1/drover/deploy', () => {
  const body = (dry_run: boolean) => ({
    project: 'shop',
    compose: compose('  web:\n    image: nginx:1.27\n    ports: ["8080:80"]\n  db:\n    image: redis:7\n    volumes: ["data:/data"]\nvolumes:\n  data: {}\n'),
    topology: topology('  "127.0.0.11": [db]\n'),
    dry_run,
  });

  it('shows the diff of a dry run and changes nothing', async () => {
    await cluster();
    const tag = h.control.snapshot.tag;
    const answer = await h.request('POST', '/v1/drover/deploy', body(true));
    expect(answer.statusCode, answer.body).toBe(200);
    expect(answer.json()).toMatchObject({ project: 'shop', dry_run: true, tag });
    expect(answer.json().diff.added).toEqual(expect.arrayContaining([expect.stringContaining('"web"'), expect.stringContaining('"db"')]));
    expect(h.control.snapshot.tag).toBe(tag);
  });

  it('applies the files, places what the topology leaves out, and changes nothing the second time', async () => {
    await cluster();
    const first = await h.request('POST', '/v1/drover/deploy', body(false));
    expect(first.statusCode, first.body).toBe(200);
    const apps = new Map(h.control.desired.applications.map((a) => [a.name, a]));
    expect(apps.get('db')!.node_uuid).toBe(nodeId(1));
    expect(apps.get('web')!.node_uuid).toBeDefined();
    const dataset = h.control.desired.datasets[0]!;
    expect(dataset.primary).toBe(nodeId(1));
    const version = h.control.snapshot.version;
    const second = await h.request('POST', '/v1/drover/deploy', body(false));
    expect(second.json().diff).toMatchObject({ added: [], changed: [], removed: [] });
    expect(h.control.snapshot.version).toBe(version);
  });

  it('turns a topology that names another node into a migration, not a flip', async () => {
    await cluster();
    await h.request('POST', '/v1/drover/deploy', body(false));
    const moved = { ...body(false), topology: topology('  "127.0.0.12": [db]\n') };
    const answer = await h.request('POST', '/v1/drover/deploy', moved);
    expect(answer.statusCode, answer.body).toBe(200);
    expect(answer.json().migrations).toEqual([expect.objectContaining({ application: 'db', from: nodeId(1), to: nodeId(2), phase: 'pending' })]);
    const db = h.control.desired.applications.find((a) => a.name === 'db')!;
    expect(db.node_uuid).toBe(nodeId(1));
    expect(h.control.desired.datasets[0]!.primary).toBe(nodeId(1));
  });

  it('refuses an unsupported Compose key with 400 naming the file, service and key, and changes nothing', async () => {
    await cluster();
    const tag = h.control.snapshot.tag;
    const answer = await h.request('POST', '/v1/drover/deploy', { ...body(false), compose: compose('  web:\n    image: nginx\n    privileged: true\n') });
    expect(answer.statusCode).toBe(400);
    expect(answer.json().code).toBe('DROVER_BAD_CONFIG');
    expect(answer.json().description).toContain('compose.yml');
    expect(answer.json().description).toContain('privileged');
    expect(h.control.snapshot.tag).toBe(tag);
  });

  it('refuses publishing a port drover\'s own processes use on the nodes, naming each service and port at once, and changes nothing', async () => {
    await cluster();
    await h.request('POST', '/v1/drover/agents/report', report(2, { logs: { port: 14526 } }));
    const tag = h.control.snapshot.tag;
    const clash = compose('  web:\n    image: nginx\n    ports: ["4526:80", "8080:8080"]\n  api:\n    image: nginx\n    ports: ["14526:80", "9524:53/udp"]\n');
    const answer = await h.request('POST', '/v1/drover/deploy', { ...body(false), compose: clash, topology: topology('') });
    expect(answer.statusCode, answer.body).toBe(409);
    expect(answer.json().code).toBe('DROVER_CONFLICT');
    expect(answer.json().description).toContain('service "web": ports: published port 4526 is used by drover itself (the agents\' logs endpoint)');
    expect(answer.json().description).toContain('service "api": ports: published port 14526 is used by drover itself (the agent\'s logs endpoint on node 127.0.0.12)');
    expect(answer.json().description).not.toContain('9524');
    expect(h.control.snapshot.tag).toBe(tag);
  });

  it('refuses a malformed deploy body with 400 naming the paths', async () => {
    await cluster();
    const answer = await h.request('POST', '/v1/drover/deploy', { project: 'Shop!', compose: { file: 'c.yml' }, topology: topology(''), extra: 1 });
    expect(answer.statusCode).toBe(400);
    expect(answer.json().errors).toEqual([expect.stringMatching(/^project: /), expect.stringMatching(/^compose\.text: /), 'extra: unknown field']);
  });
});

describe('unexpected errors', () => {
  it('are logged and answered 500 with an incident id and nothing more', async () => {
    class BrokenStore extends MemoryConfigStore {
      override update(_fn: Updater): Promise<StoreSnapshot> {
        return Promise.reject(new TypeError('secret internals'));
      }
    }
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    h = await harness({ store: new BrokenStore(), log: pino({ level: 'error' }, sink) });
    const answer = await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1) });
    expect(answer.statusCode).toBe(500);
    const body = answer.json();
    expect(body).toEqual({ description: expect.stringContaining(body.incident), incident: expect.stringMatching(/^[0-9a-f-]{36}$/), code: 'DROVER_INTERNAL' });
    expect(answer.body).not.toContain('secret internals');
    expect(lines.join('')).toContain(body.incident);
    expect(lines.join('')).toContain('secret internals');
  });

  it('answers an unknown path with 404 in the same shape', async () => {
    h = await harness();
    const answer = await h.request('GET', '/v1/nothing');
    expect(answer.statusCode).toBe(404);
    expect(answer.json()).toEqual({ description: 'No endpoint GET /v1/nothing.', code: 'DROVER_NOT_FOUND' });
  });
});

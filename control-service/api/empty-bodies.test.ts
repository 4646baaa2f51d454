/**
 * Bodies as Flocker reads them: a GET or DELETE (and drover's actions, which take no body)
 * ignores what is sent, so `Content-Type: application/json` with an empty body is accepted
 * (fastify's default parser answered 400 "Body cannot be empty"); a route that takes a body
 * still refuses an empty one, with the 400 naming the fields it lacks.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '#common/api-client.ts';
import { isDroverError } from '#common/errors.ts';
import { silentLogger } from '#common/log.ts';
import { buildApp } from '../app.ts';
import { Control } from '../control.ts';
import { MemoryConfigStore } from '../store/memory-store.ts';
import { datasetId, harness, nodeId, report, type Harness } from '../testing/harness.ts';

const JSON_TYPE = { 'content-type': 'application/json' };

let h: Harness | null = null;
let app: FastifyInstance | null = null;
let control: Control | null = null;
afterEach(async () => {
  await h?.close();
  await app?.close();
  await control?.stop();
  h = app = control = null;
});

async function populated(): Promise<Harness> {
  h = await harness();
  await h.request('POST', '/v1/drover/agents/report', report(1));
  await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
  await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(2) });
  await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'nginx', node_uuid: nodeId(1) });
  await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: null });
  return h;
}

describe('an empty JSON body where the route takes none (inject)', () => {
  it.each([
    ['GET', '/v1/version', 200],
    ['GET', '/v1/configuration/datasets', 200],
    ['GET', '/v1/configuration/leases', 200],
    ['GET', '/v1/state/nodes', 200],
    ['DELETE', `/v1/configuration/leases/${datasetId(1)}`, 200],
    ['DELETE', `/v1/configuration/datasets/${datasetId(2)}`, 200],
    ['DELETE', '/v1/configuration/containers/web', 200],
    ['POST', `/v1/drover/nodes/${nodeId(1)}/cordon`, 200],
  ] as const)('%s %s with Content-Type: application/json and no bytes → %i', async (method, url, status) => {
    const h = await populated();
    const answer = await h.request(method, url, '');
    expect(answer.statusCode, answer.body).toBe(status);
  });

  it('answers the same as without the header: 404 for a lease that is not there', async () => {
    const h = await populated();
    const answer = await h.request('DELETE', `/v1/configuration/leases/${datasetId(2)}`, '');
    expect(answer.statusCode).toBe(404);
    expect(answer.json().description).toBe('Lease not found.');
  });

  it('ignores whatever body a DELETE carries, as Flocker does (even one that is not JSON)', async () => {
    const h = await populated();
    expect((await h.request('DELETE', `/v1/configuration/leases/${datasetId(1)}`, '{"dataset_id": "x"')).statusCode).toBe(200);
    expect((await h.request('DELETE', `/v1/configuration/datasets/${datasetId(2)}`, { deleted: false })).json().deleted).toBe(true);
  });

  it('still takes the content type with parameters (application/json; charset=utf-8)', async () => {
    const h = await populated();
    const answer = await h.request('DELETE', `/v1/configuration/leases/${datasetId(1)}`, '', { 'content-type': 'application/json; charset=utf-8' });
    expect(answer.statusCode).toBe(200);
  });
});

describe('an empty body where the route takes one', () => {
  it.each([
    ['POST', '/v1/configuration/leases', ['dataset_id: ', 'node_uuid: ', 'expires: ']],
    ['POST', '/v1/configuration/datasets', ['primary: ']],
    ['POST', '/v1/configuration/containers', ['name: ', 'image: ']],
    ['POST', `/v1/configuration/datasets/${datasetId(1)}`, ['primary: ']],
    ['PUT', `/v1/drover/datasets/${datasetId(1)}/replication`, ['replicas: ']],
  ] as const)('%s %s → 400 naming what is missing, nothing changed', async (method, url, lines) => {
    const h = await populated();
    const before = h.control.snapshot;
    for (const [body, headers] of [['', JSON_TYPE], [undefined, {}]] as const) {
      const answer = await h.request(method, url, body, headers);
      expect(answer.statusCode, answer.body).toBe(400);
      expect(answer.json().description).toBe("The provided JSON doesn't match the required schema.");
      expect(answer.json().errors).toEqual(expect.arrayContaining(lines.map((l) => expect.stringMatching(new RegExp(`^${l.replace(/[()]/g, '\\$&')}`)))));
    }
    expect(h.control.snapshot.tag).toBe(before.tag);
    expect(h.control.snapshot.version).toBe(before.version);
  });

  it('still refuses malformed JSON and prototype poisoning (400), as fastify did', async () => {
    const h = await populated();
    const bad = await h.request('POST', '/v1/configuration/leases', '{"dataset_id":');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('FST_ERR_CTP_INVALID_JSON_BODY');
    const poisoned = await h.request('POST', '/v1/configuration/datasets', `{"primary":"${nodeId(1)}","__proto__":{"deleted":true}}`);
    expect(poisoned.statusCode).toBe(400);
    expect(h.control.desired.datasets).toHaveLength(2);
  });

  it('still parses the agent report as raw text on its own route', async () => {
    const h = await populated();
    expect((await h.request('POST', '/v1/drover/agents/report', report(2))).statusCode).toBe(200);
    expect((await h.request('POST', '/v1/drover/agents/report', '')).statusCode).toBe(400);
  });
});

describe('through the real client and a listening service', () => {
  async function serve(): Promise<{ client: ApiClient; base: string }> {
    control = new Control({ store: new MemoryConfigStore(), log: silentLogger() });
    await control.start();
    app = buildApp({ control, log: silentLogger(), version: '0.0.0-test' });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    return { client: new ApiClient({ baseUrl: base }), base };
  }

  it('releases a lease and deletes a dataset when the call says Content-Type: application/json with no body', async () => {
    const { client } = await serve();
    await client.createDataset({ primary: nodeId(1), dataset_id: datasetId(1) });
    await client.acquireLease({ dataset_id: datasetId(1), node_uuid: nodeId(1), expires: 30 });
    const released = await client.call('releaseLease', { params: { dataset_id: datasetId(1) }, headers: JSON_TYPE });
    expect(released.status).toBe(200);
    expect(released.body).toMatchObject({ dataset_id: datasetId(1), node_uuid: nodeId(1) });
    expect(released.body.expires).toBeGreaterThan(25); // seconds remaining when released (a real clock)
    const deleted = await client.call('deleteDataset', { params: { dataset_id: datasetId(1) }, headers: JSON_TYPE });
    expect(deleted.status).toBe(200);
    expect((deleted.body as { deleted: boolean }).deleted).toBe(true);
    expect((await client.call('leases', { headers: JSON_TYPE })).body).toEqual([]);
  });

  it('answers a DELETE and a GET sent with Content-Length: 0 and the JSON type (as Flocker clients send them)', async () => {
    const { client, base } = await serve();
    await client.createDataset({ primary: nodeId(1), dataset_id: datasetId(1) });
    await client.acquireLease({ dataset_id: datasetId(1), node_uuid: nodeId(1), expires: null });
    const del = await fetch(`${base}/v1/configuration/leases/${datasetId(1)}`, { method: 'DELETE', headers: { ...JSON_TYPE, 'content-length': '0' }, body: '' });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ dataset_id: datasetId(1), node_uuid: nodeId(1), expires: null });
    const get = await fetch(`${base}/v1/configuration/leases`, { headers: JSON_TYPE });
    expect(get.status).toBe(200);
  });

  it('takes a lease on a dataset not yet created (201) and answers expires as asked', async () => {
    const { client } = await serve();
    const { lease, created } = await client.acquireLease({ dataset_id: datasetId(3), node_uuid: nodeId(1), expires: 30 });
    expect(created).toBe(true);
    expect(lease).toEqual({ dataset_id: datasetId(3), node_uuid: nodeId(1), expires: 30 });
    await client.createDataset({ primary: nodeId(2), dataset_id: datasetId(3) });
    await client.moveDataset(datasetId(3), nodeId(2)); // where it is: nothing to do, not refused
    const away = await client.moveDataset(datasetId(3), nodeId(3)).catch((e: unknown) => e);
    expect(isDroverError(away, 'DROVER_LEASE_HELD')).toBe(true);
  });

  it('refuses an empty body where one is required with the 400 naming the fields', async () => {
    const { base } = await serve();
    const answer = await fetch(`${base}/v1/configuration/leases`, { method: 'POST', headers: JSON_TYPE, body: '' });
    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { errors: string[] }).errors).toEqual([expect.stringMatching(/^dataset_id: /), expect.stringMatching(/^node_uuid: /), expect.stringMatching(/^expires: /)]);
  });
});

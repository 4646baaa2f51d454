import { afterEach, describe, expect, it } from 'vitest';
import { datasetId, harness, nodeId, observedDataset, report, type Harness } from '../testing/harness.ts';

let h: Harness;
afterEach(async () => h?.close());

/** Asserts a request is refused with `status` and leaves the configuration as it was. */
async function refused(status: number, method: 'POST' | 'DELETE', url: string, body?: unknown, headers?: Record<string, string>) {
  const before = h.control.snapshot;
  const answer = await h.request(method, url, body, headers);
  expect(answer.statusCode, answer.body).toBe(status);
  expect(h.control.snapshot.tag).toBe(before.tag);
  expect(h.control.snapshot.version).toBe(before.version);
  return answer.json();
}

describe('/v1/configuration/datasets', () => {
  it('creates a dataset with a server-chosen lower-case id and lists it with the configuration tag', async () => {
    h = await harness();
    const created = await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), maximum_size: 67108864, metadata: { name: 'db' } });
    expect(created.statusCode).toBe(201);
    const dataset = created.json();
    expect(dataset).toEqual({ dataset_id: expect.stringMatching(/^[0-9a-f-]{36}$/), primary: nodeId(1), maximum_size: 67108864, metadata: { name: 'db' }, deleted: false, replication: null, replicas: [] });
    const listed = await h.request('GET', '/v1/configuration/datasets');
    expect(listed.json()).toEqual([dataset]);
    expect(listed.headers['x-configuration-tag']).toBe(h.control.snapshot.tag);
    expect(created.headers['x-configuration-tag']).toBe(h.control.snapshot.tag);
  });

  it('keeps a given dataset_id and refuses it a second time with 409', async () => {
    h = await harness();
    expect((await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) })).statusCode).toBe(201);
    const body = await refused(409, 'POST', '/v1/configuration/datasets', { primary: nodeId(2), dataset_id: datasetId(1) });
    expect(body.description).toBe('The provided dataset_id is already in use.');
  });

  it.each([
    ['a wrong type', { primary: 7 }, ['primary: Invalid input: expected string, received number']],
    ['an unknown field', { primary: nodeId(1), colour: 'red' }, ['colour: unknown field']],
    ['a bad UUID', { primary: 'node-one' }, ['primary: must be a lower-case UUID']],
    ['an upper-case UUID', { primary: 'AAAAAAAA-0000-4000-8000-00000000000A' }, ['primary: must be a lower-case UUID']],
    ['a missing primary', {}, ['primary: Invalid input: expected string, received undefined']],
    ['too small a maximum_size', { primary: nodeId(1), maximum_size: 1024 }, ['maximum_size: Too small: expected number to be >=67108864']],
    ['too much metadata', { primary: nodeId(1), metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }, ['metadata: at most 16 metadata entries']],
    ['not an object', [1, 2], ['(body): Invalid input: expected object, received array']],
  ])('refuses %s with 400 naming the path and changes nothing', async (_what, body, errors) => {
    h = await harness();
    const answer = await refused(400, 'POST', '/v1/configuration/datasets', body);
    expect(answer.description).toBe("The provided JSON doesn't match the required schema.");
    expect(answer.errors).toEqual(errors);
  });

  it('refuses a body that is not JSON with 400', async () => {
    h = await harness();
    const answer = await refused(400, 'POST', '/v1/configuration/datasets', '{"primary": ');
    expect(answer.description).toMatch(/JSON/i);
  });

  it('refuses an oversized body with 413 and changes nothing', async () => {
    h = await harness();
    const answer = await refused(413, 'POST', '/v1/configuration/datasets', { primary: nodeId(1), metadata: { name: 'x'.repeat(2 * 1024 * 1024) } });
    expect(answer.description).toMatch(/too large/i);
  });

  it('applies a write whose X-If-Configuration-Matches is the current tag, and refuses a stale one with 412', async () => {
    h = await harness();
    const tag = (await h.request('GET', '/v1/configuration/datasets')).headers['x-configuration-tag'] as string;
    const first = await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1) }, { 'x-if-configuration-matches': tag });
    expect(first.statusCode).toBe(201);
    const body = await refused(412, 'POST', '/v1/configuration/datasets', { primary: nodeId(1) }, { 'x-if-configuration-matches': tag });
    expect(body.code).toBe('DROVER_CONFIGURATION_CHANGED');
    await refused(412, 'DELETE', `/v1/configuration/datasets/${first.json().dataset_id}`, undefined, { 'x-if-configuration-matches': tag });
  });

  it('soft-deletes a dataset, idempotently', async () => {
    h = await harness();
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
    const deleted = await h.request('DELETE', `/v1/configuration/datasets/${datasetId(1)}`);
    expect(deleted.statusCode).toBe(200);
    expect(deleted.json()).toMatchObject({ dataset_id: datasetId(1), deleted: true });
    const again = await h.request('DELETE', `/v1/configuration/datasets/${datasetId(1)}`);
    expect(again.statusCode).toBe(200);
    expect((await h.request('GET', '/v1/configuration/datasets')).json()).toEqual([expect.objectContaining({ deleted: true })]);
  });

  it('answers 404 for an unknown dataset and 400 for a malformed id', async () => {
    h = await harness();
    expect((await refused(404, 'DELETE', `/v1/configuration/datasets/${datasetId(9)}`)).description).toBe('Dataset not found.');
    expect((await refused(400, 'DELETE', '/v1/configuration/datasets/not-a-uuid')).errors).toEqual(['params.dataset_id: must be a lower-case UUID']);
    await refused(404, 'POST', `/v1/configuration/datasets/${datasetId(9)}`, { primary: nodeId(1) });
  });

  it('moves a dataset with a migration, keeping the primary until handoff', async () => {
    h = await harness();
    await h.request('POST', '/v1/drover/agents/report', report(1));
    await h.request('POST', '/v1/drover/agents/report', report(2));
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
    const moved = await h.request('POST', `/v1/configuration/datasets/${datasetId(1)}`, { primary: nodeId(2) });
    expect(moved.statusCode).toBe(200);
    const body = moved.json();
    expect(body).toMatchObject({ dataset_id: datasetId(1), primary: nodeId(1), migration: { application: null, dataset_ids: [datasetId(1)], from: nodeId(1), to: nodeId(2), phase: 'pending' } });
    const again = await h.request('POST', `/v1/configuration/datasets/${datasetId(1)}`, { primary: nodeId(2) });
    expect(again.json().migration.id).toBe(body.migration.id);
    expect(h.control.desired.migrations).toHaveLength(1);
  });

  it('moves a dataset of a node that never registered at once (there is no data to carry)', async () => {
    h = await harness();
    await h.request('POST', '/v1/drover/agents/report', report(2));
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
    const moved = await h.request('POST', `/v1/configuration/datasets/${datasetId(1)}`, { primary: nodeId(2) });
    expect(moved.json()).toMatchObject({ primary: nodeId(2), migration: null });
  });

  it('refuses to move a deleted dataset with 405', async () => {
    h = await harness();
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
    await h.request('DELETE', `/v1/configuration/datasets/${datasetId(1)}`);
    await refused(405, 'POST', `/v1/configuration/datasets/${datasetId(1)}`, { primary: nodeId(2) });
  });

  it('refuses to move or delete a dataset leased to its node, naming the lease (409)', async () => {
    h = await harness();
    await h.request('POST', '/v1/drover/agents/report', report(1));
    await h.request('POST', '/v1/drover/agents/report', report(2));
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
    expect((await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: null })).statusCode).toBe(201);
    const move = await refused(409, 'POST', `/v1/configuration/datasets/${datasetId(1)}`, { primary: nodeId(2) });
    expect(move.code).toBe('DROVER_LEASE_HELD');
    expect(move.description).toContain(nodeId(1));
    expect(move.detail).toMatchObject({ dataset_id: datasetId(1), node_uuid: nodeId(1) });
    expect((await refused(409, 'DELETE', `/v1/configuration/datasets/${datasetId(1)}`)).code).toBe('DROVER_LEASE_HELD');
    await h.request('DELETE', `/v1/configuration/leases/${datasetId(1)}`);
    expect((await h.request('POST', `/v1/configuration/datasets/${datasetId(1)}`, { primary: nodeId(2) })).statusCode).toBe(200);
  });

  it('refuses to move or delete a dataset mounted by a container (409)', async () => {
    h = await harness();
    await h.request('POST', '/v1/drover/agents/report', report(1));
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
    await h.request('POST', '/v1/configuration/containers', { name: 'db', image: 'redis', node_uuid: nodeId(1), volumes: [{ dataset_id: datasetId(1), mountpoint: '/data' }] });
    expect((await refused(409, 'POST', `/v1/configuration/datasets/${datasetId(1)}`, { primary: nodeId(2) })).code).toBe('DROVER_DATASET_ATTACHED');
    expect((await refused(409, 'DELETE', `/v1/configuration/datasets/${datasetId(1)}`)).code).toBe('DROVER_DATASET_ATTACHED');
  });
});

describe('/v1/state/datasets', () => {
  it('lists datasets as agents see them: primary and path only where one is writable', async () => {
    h = await harness();
    await h.request('POST', '/v1/drover/agents/report', report(1, { datasets: [observedDataset(datasetId(1)), observedDataset(datasetId(2), { writable: false })] }));
    await h.request('POST', '/v1/drover/agents/report', report(2, { datasets: [observedDataset(datasetId(2), { path: '/p/2' })] }));
    const states = (await h.request('GET', '/v1/state/datasets')).json();
    expect(states).toEqual([
      { dataset_id: datasetId(1), primary: nodeId(1), path: `/drover/${datasetId(1)}`, maximum_size: null },
      { dataset_id: datasetId(2), primary: nodeId(2), path: '/p/2', maximum_size: null },
    ]);
  });

  it('keeps the datasets of a node that went silent', async () => {
    h = await harness({ nodeTimeoutMs: 15_000 });
    await h.request('POST', '/v1/drover/agents/report', report(1, { datasets: [observedDataset(datasetId(1))] }));
    h.clock.advance(60_000);
    h.control.tick();
    expect((await h.request('GET', '/v1/state/datasets')).json()).toEqual([expect.objectContaining({ dataset_id: datasetId(1), primary: nodeId(1) })]);
  });
});

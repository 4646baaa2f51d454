import { afterEach, describe, expect, it } from 'vitest';
import { datasetId, harness, nodeId, type Harness } from '../testing/harness.ts';

let h: Harness;
afterEach(async () => h?.close());

async function withDataset() {
  h = await harness();
  await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
}

describe('/v1/configuration/leases', () => {
  it('takes a lease (201), renews it (200), and shows expires as seconds remaining', async () => {
    await withDataset();
    const taken = await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: 60 });
    expect(taken.statusCode).toBe(201);
    expect(taken.json()).toEqual({ dataset_id: datasetId(1), node_uuid: nodeId(1), expires: 60 });
    expect(h.control.desired.leases).toEqual([{ dataset_id: datasetId(1), node_uuid: nodeId(1), expires_at: h.clock.now() + 60_000 }]);
    h.clock.advance(15_000);
    expect((await h.request('GET', '/v1/configuration/leases')).json()).toEqual([{ dataset_id: datasetId(1), node_uuid: nodeId(1), expires: 45 }]);
    const renewed = await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: null });
    expect(renewed.statusCode).toBe(200);
    expect(renewed.json().expires).toBeNull();
  });

  it('refuses a lease held by another node with 409, until the lease expires', async () => {
    await withDataset();
    await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: 10 });
    const held = await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(2), expires: 10 });
    expect(held.statusCode).toBe(409);
    expect(held.json()).toMatchObject({ code: 'DROVER_LEASE_HELD', detail: { node_uuid: nodeId(1) } });
    h.clock.advance(11_000);
    expect((await h.request('GET', '/v1/configuration/leases')).json()).toEqual([]);
    expect((await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(2), expires: 10 })).statusCode).toBe(201);
  });

  it('drops expired leases from the configuration on the sweep', async () => {
    await withDataset();
    await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: 1 });
    h.clock.advance(2000);
    h.control.tick();
    await new Promise((r) => setTimeout(r, 20));
    expect(h.control.desired.leases).toEqual([]);
  });

  it('releases a lease (200) and answers 404 when there is none', async () => {
    await withDataset();
    await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: null });
    const released = await h.request('DELETE', `/v1/configuration/leases/${datasetId(1)}`);
    expect(released.statusCode).toBe(200);
    expect(released.json()).toEqual({ dataset_id: datasetId(1), node_uuid: nodeId(1), expires: null });
    const again = await h.request('DELETE', `/v1/configuration/leases/${datasetId(1)}`);
    expect(again.statusCode).toBe(404);
    expect(again.json().description).toBe('Lease not found.');
  });

  it.each([
    ['a missing expires', { dataset_id: datasetId(1), node_uuid: nodeId(1) }, 'expires'],
    ['a negative expires', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: -1 }, 'expires'],
    ['a bad node UUID', { dataset_id: datasetId(1), node_uuid: 'n1', expires: 1 }, 'node_uuid'],
    ['an unknown field', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: 1, exclusive: true }, 'exclusive'],
  ])('refuses %s with 400 naming the path and changes nothing', async (_what, body, path) => {
    await withDataset();
    const tag = h.control.snapshot.tag;
    const answer = await h.request('POST', '/v1/configuration/leases', body);
    expect(answer.statusCode).toBe(400);
    expect(answer.json().errors).toEqual([expect.stringMatching(new RegExp(`^${path}: `))]);
    expect(h.control.snapshot.tag).toBe(tag);
  });

  it('refuses a lease on an unknown dataset (404)', async () => {
    await withDataset();
    expect((await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(2), node_uuid: nodeId(1), expires: null })).statusCode).toBe(404);
  });
});

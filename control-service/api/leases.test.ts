import { afterEach, describe, expect, it } from 'vitest';
import { datasetId, FakeClock, harness, HARNESS_EPOCH, nodeId, report, type Harness } from '../testing/harness.ts';

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

  // Was "refuses a lease on an unknown dataset (404)": Flocker takes it (201), and so does drover now.
  it('takes a lease on a dataset not (yet) in the configuration (201), which then leases the dataset created with that id', async () => {
    await withDataset();
    const taken = await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(2), node_uuid: nodeId(1), expires: null });
    expect(taken.statusCode).toBe(201);
    expect(taken.json()).toEqual({ dataset_id: datasetId(2), node_uuid: nodeId(1), expires: null });
    expect((await h.request('GET', '/v1/configuration/leases')).json()).toEqual([{ dataset_id: datasetId(2), node_uuid: nodeId(1), expires: null }]);
    // Renewed by its node (200), refused to another (409), as any lease.
    expect((await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(2), node_uuid: nodeId(1), expires: null })).statusCode).toBe(200);
    expect((await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(2), node_uuid: nodeId(2), expires: null })).statusCode).toBe(409);

    // The dataset arrives on another node (creating is not moving it away); the lease holds it there.
    expect((await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(2), dataset_id: datasetId(2) })).statusCode).toBe(201);
    const move = await h.request('POST', `/v1/configuration/datasets/${datasetId(2)}`, { primary: nodeId(3) });
    expect(move.statusCode).toBe(409);
    expect(move.json()).toMatchObject({ code: 'DROVER_LEASE_HELD', detail: { dataset_id: datasetId(2), node_uuid: nodeId(1) } });
    expect((await h.request('DELETE', `/v1/configuration/datasets/${datasetId(2)}`)).json().code).toBe('DROVER_LEASE_HELD');
    // Moving it to the lease's node is allowed; releasing the lease frees it.
    expect((await h.request('DELETE', `/v1/configuration/leases/${datasetId(2)}`)).statusCode).toBe(200);
    expect((await h.request('DELETE', `/v1/configuration/datasets/${datasetId(2)}`)).statusCode).toBe(200);
  });

  it("keeps agents' views whole with a lease on an unknown dataset, and shows it to the dataset's nodes once it exists", async () => {
    await withDataset();
    await h.request('POST', '/v1/drover/agents/report', report(1));
    await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: null });
    await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(2), node_uuid: nodeId(1), expires: 30 });
    const before = await h.request('GET', `/v1/drover/agents/${nodeId(1)}/desired`);
    expect(before.statusCode).toBe(200);
    expect(before.json().leases.map((l: { dataset_id: string }) => l.dataset_id)).toEqual([datasetId(1)]);
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(2) });
    const after = await h.request('GET', `/v1/drover/agents/${nodeId(1)}/desired`);
    expect(after.json().leases).toEqual(
      expect.arrayContaining([{ dataset_id: datasetId(2), node_uuid: nodeId(1), expires_at: HARNESS_EPOCH + 30_000 }, expect.objectContaining({ dataset_id: datasetId(1) })]),
    );
    expect(after.json().version).toBeGreaterThan(before.json().version);
  });

  it('still refuses a lease on a deleted dataset (405)', async () => {
    await withDataset();
    await h.request('DELETE', `/v1/configuration/datasets/${datasetId(1)}`);
    const answer = await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: null });
    expect(answer.statusCode).toBe(405);
    expect(answer.json().code).toBe('DROVER_DATASET_DELETED');
  });

  it.each([30, 0.5, 1.1, 0.000_123, 86_400.25, 0])('answers expires %s (the seconds asked) on taking and on renewing, whatever the clock', async (expires) => {
    h = await harness({ clock: new FakeClock(1_777_777_777_777.5) });
    const taken = await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires });
    expect(taken.statusCode).toBe(201);
    expect(taken.json().expires).toBe(expires);
    h.clock.advance(123);
    const renewed = await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: expires === 0 ? 7 : expires });
    expect(renewed.json().expires).toBe(expires === 0 ? 7 : expires);
  });

  it('answers the seconds asked even when time passes while the write commits (30, not 29.998)', async () => {
    /** A clock that moves 1 ms at every reading: the commit takes time. */
    class Ticking extends FakeClock {
      override now(): number {
        this.advance(1);
        return super.now();
      }
    }
    h = await harness({ clock: new Ticking(HARNESS_EPOCH) });
    await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
    const taken = await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: 30 });
    expect(taken.json().expires).toBe(30);
    const renewed = await h.request('POST', '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: 60 });
    expect(renewed.json().expires).toBe(60);
    // Read later, it is the seconds remaining then.
    const [listed] = (await h.request('GET', '/v1/configuration/leases')).json();
    expect(listed.expires).toBeLessThan(60);
    expect(listed.expires).toBeGreaterThan(59.9);
  });
});

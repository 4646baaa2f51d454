/**
 * `POST /v1/drover/agents/replication` (docs/DESIGN.md §38): a primary's replication status
 * alone, merged into what the control service shows of it — `GET /v1/drover/replication`,
 * application status, events — without renewing the node's lease or replacing its last report.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ReplicaStatus } from '#common/model.ts';
import { datasetId, harness, headerIdentity, nodeId, report, type Harness } from '../testing/harness.ts';

let h: Harness;
afterEach(async () => h?.close());

const D = datasetId(1);

async function cluster(options: Parameters<typeof harness>[0] = {}) {
  h = await harness(options);
  for (const i of [1, 2, 3]) await h.request('POST', '/v1/drover/agents/report', report(i), { 'x-test-identity': `node:n${i}` });
  await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: D });
  await h.request('PUT', `/v1/drover/datasets/${D}/replication`, { replicas: 1, interval_seconds: 1 });
}

const status = (snapshot: string, extra: Partial<ReplicaStatus> = {}): ReplicaStatus => ({
  dataset_id: D,
  replica: nodeId(2),
  state: 'ok',
  newest_snapshot: snapshot,
  newest_snapshot_created_at: 1_799_999_990_000,
  lag_seconds: 0.3,
  bytes_sent_total: 4096,
  last_success_at: 1_799_999_999_000,
  last_error: null,
  ...extra,
});

const AS_N1 = { 'x-test-identity': 'node:n1' };
const replica = async () => (await h.request('GET', '/v1/drover/replication')).json()[0].replicas[0];

describe('POST /v1/drover/agents/replication', () => {
  it("shows the newer status at once, with its lag from when it arrived, and a full report built before it does not roll it back", async () => {
    await cluster({ identify: headerIdentity });
    await h.request('POST', '/v1/drover/agents/report', report(1, { replication: [status('s1', { lag_seconds: 2.5 })], replication_seq: 100 }), AS_N1);
    h.clock.advance(1_000);
    expect(await replica()).toMatchObject({ newest_snapshot: 's1', lag_seconds: 3.5 });
    const answer = await h.request('POST', '/v1/drover/agents/replication', { uuid: nodeId(1), era: 'era-1', seq: 101, replication: [status('s2', { lag_seconds: 0.3 })] }, AS_N1);
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toEqual({ merged: true });
    expect(await replica()).toMatchObject({ newest_snapshot: 's2', lag_seconds: 0.3 });
    h.clock.advance(200);
    // The pass's report, built before the step ended (seq 100), arrives late.
    await h.request('POST', '/v1/drover/agents/report', report(1, { replication: [status('s1', { lag_seconds: 3.4 })], replication_seq: 100 }), AS_N1);
    expect(await replica()).toMatchObject({ newest_snapshot: 's2', lag_seconds: 0.5 });
    expect((await replica()).problem).toBeNull();
  });

  it("neither renews the node's lease nor replaces the rest of its last report", async () => {
    await cluster({ identify: headerIdentity, nodeTimeoutMs: 15_000 });
    await h.request('POST', '/v1/drover/agents/report', report(1, { labels: { disk: 'ssd' }, replication_seq: 1 }), AS_N1);
    const before = h.control.observed.get(nodeId(1))!;
    h.clock.advance(10_000);
    await h.request('POST', '/v1/drover/agents/replication', { uuid: nodeId(1), era: 'era-1', seq: 2, replication: [status('s2')] }, AS_N1);
    expect(h.control.observed.get(nodeId(1))).toBe(before);
    expect(h.control.observed.silentMs(nodeId(1))).toBe(10_000);
    h.clock.advance(6_000);
    h.control.tick();
    expect(h.control.observed.stateOf(nodeId(1))).toBe('unknown');
  });

  it('emits the replica becoming a problem as an event when the report arrives, not at the next tick', async () => {
    await cluster();
    await h.request('POST', '/v1/drover/agents/report', report(1, { replication: [status('s1')], replication_seq: 1 }));
    h.control.tick();
    const from = h.control.events.since(0).at(-1)!.id;
    await h.request('POST', '/v1/drover/agents/replication', { uuid: nodeId(1), era: 'era-1', seq: 2, replication: [status('s1', { state: 'error', last_error: { code: 'DROVER_ZFS_NO_SPACE', message: 'pool full' } })] });
    const events = h.control.events.since(from).filter((r) => r.event.type === 'replication').map((r) => r.event.data);
    expect(events).toEqual([expect.objectContaining({ dataset_id: D, replica: nodeId(2), state: 'error', problem: expect.stringContaining('DROVER_ZFS_NO_SPACE') })]);
  });

  it("refuses, by rule own-report, a node certificate reporting another node's replication, and merges nothing", async () => {
    await cluster({ identify: headerIdentity });
    await h.request('POST', '/v1/drover/agents/report', report(1, { replication: [status('s1')], replication_seq: 1 }), AS_N1);
    const other = await h.request('POST', '/v1/drover/agents/replication', { uuid: nodeId(1), era: 'era-1', seq: 2, replication: [status('s2')] }, { 'x-test-identity': 'node:n2' });
    expect(other.statusCode).toBe(403);
    expect(other.json().code).toBe('DROVER_NODE_IDENTITY_MISMATCH');
    const stranger = await h.request('POST', '/v1/drover/agents/replication', { uuid: nodeId(1), era: 'era-1', seq: 3, replication: [status('s3')] }, { 'x-test-identity': 'node:n9' });
    expect(stranger.statusCode).toBe(403);
    expect((await replica()).newest_snapshot).toBe('s1');
  });

  it('does not merge a report of another era, nor one for a node that made no full report', async () => {
    await cluster();
    await h.request('POST', '/v1/drover/agents/report', report(1, { replication: [status('s1')], replication_seq: 1 }));
    expect((await h.request('POST', '/v1/drover/agents/replication', { uuid: nodeId(1), era: 'era-0', seq: 5, replication: [status('s2')] })).json()).toEqual({ merged: false });
    expect((await h.request('POST', '/v1/drover/agents/replication', { uuid: nodeId(7), era: 'era-7', seq: 5, replication: [] })).json()).toEqual({ merged: false });
    expect((await replica()).newest_snapshot).toBe('s1');
  });

  it('refuses a bad body naming the field', async () => {
    await cluster();
    const answer = await h.request('POST', '/v1/drover/agents/replication', { uuid: nodeId(1), era: 'era-1', seq: -1, replication: [] });
    expect(answer.statusCode).toBe(400);
    expect(JSON.stringify(answer.json())).toContain('seq');
  });
});

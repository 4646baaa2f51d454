import { describe, expect, it } from 'vitest';
import type { ReplicaStatus } from '#common/model.ts';
import { ReplicationReports } from './replication-reports.ts';

const NODE = '00000001-0000-4000-8000-000000000001';
const status = (snapshot: string): ReplicaStatus => ({
  dataset_id: '0000000d-0000-4000-8000-000000000001',
  replica: '00000001-0000-4000-8000-000000000002',
  state: 'ok',
  newest_snapshot: snapshot,
  newest_snapshot_created_at: 1_000,
  lag_seconds: 0.2,
  bytes_sent_total: 10,
  last_success_at: 1_100,
  last_error: null,
});
const only = (reports: ReplicationReports) => reports.get(NODE)?.statuses.map((s) => s.newest_snapshot);

describe('ReplicationReports', () => {
  it('takes a replication report newer than the full report, and keeps it against a full report built before it', () => {
    const r = new ReplicationReports();
    expect(r.fromFullReport(NODE, [status('s1')], 10, false, 1_000)).toBe(true);
    expect(r.fromReplicationReport({ uuid: NODE, era: 'e', seq: 11, replication: [status('s2')] }, 'e', 1_500)).toBeNull();
    expect(r.get(NODE)).toMatchObject({ seq: 11, receivedAt: 1_500 });
    // The loop's report was built at seq 10 and arrives after: it does not roll s2 back to s1.
    expect(r.fromFullReport(NODE, [status('s1')], 10, false, 1_600)).toBe(false);
    expect(only(r)).toEqual(['s2']);
    expect(r.get(NODE)?.receivedAt).toBe(1_500);
    // Nor does one carrying the same status again: its lag was measured later, but the status is the one held.
    expect(r.fromFullReport(NODE, [status('s2')], 11, false, 1_700)).toBe(false);
    expect(r.get(NODE)?.receivedAt).toBe(1_500);
    expect(r.fromFullReport(NODE, [status('s3')], 12, false, 1_800)).toBe(true);
    expect(only(r)).toEqual(['s3']);
  });

  it('refuses a replication report older than or equal to what is held, of another era, or of a node with no full report', () => {
    const r = new ReplicationReports();
    expect(r.fromReplicationReport({ uuid: NODE, era: 'e', seq: 1, replication: [status('s0')] }, undefined, 0)).toBe('no-report');
    r.fromFullReport(NODE, [status('s1')], 10, false, 1_000);
    expect(r.fromReplicationReport({ uuid: NODE, era: 'e', seq: 10, replication: [status('sx')] }, 'e', 1_100)).toBe('older');
    expect(r.fromReplicationReport({ uuid: NODE, era: 'e', seq: 9, replication: [status('sx')] }, 'e', 1_100)).toBe('older');
    expect(r.fromReplicationReport({ uuid: NODE, era: 'old', seq: 99, replication: [status('sx')] }, 'e', 1_100)).toBe('other-era');
    expect(only(r)).toEqual(['s1']);
    expect(r.get(NODE)?.receivedAt).toBe(1_000);
  });

  it("takes a full report of a new era whatever its seq (the host restarted), and an older agent's report with no seq", () => {
    const r = new ReplicationReports();
    r.fromFullReport(NODE, [status('s1')], 1_000_000, false, 1_000);
    expect(r.fromFullReport(NODE, [status('s0')], 5, true, 2_000)).toBe(true);
    expect(r.get(NODE)).toMatchObject({ seq: 5, receivedAt: 2_000 });
    expect(r.fromFullReport(NODE, [status('old')], undefined, false, 3_000)).toBe(true);
    expect(r.get(NODE)).toMatchObject({ seq: null, receivedAt: 3_000 });
    // After an agent that sent no seq, any ordered report is newer.
    expect(r.fromReplicationReport({ uuid: NODE, era: 'e', seq: 1, replication: [status('s9')] }, 'e', 3_100)).toBeNull();
  });
});

import { describe, expect, it } from 'vitest';
import { Desired, type Application, type Dataset } from '#common/model.ts';
import { chooseFailoverTarget, droverSnapshotTime, failover, failoverCandidates, failoverSteps, type SnapshotsOn } from './failover.ts';

const n = (i: number) => `00000000-0000-4000-8000-00000000000${i}`;
const D = '11111111-1111-4111-8111-111111111111';
const node = (i: number, labels: Record<string, string> = {}) => ({ uuid: n(i), host: `127.0.0.1${i}`, labels, transfer: {} });
const snap = (ms: number, seq = 1) => `drover-${new Date(ms).toISOString().replace(/[-:]/g, '').replace('.', '')}-${String(seq).padStart(4, '0')}`;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

function world(opts: { replicas?: number; app?: Partial<Application>; stateless?: boolean } = {}): Desired {
  const dataset: Partial<Dataset> = { dataset_id: D, primary: n(1), replication: { replicas: opts.replicas ?? 1, interval_seconds: 2, retention: { primary: '1x1m(keep=all)', replicas: '1x1m(keep=all)' } }, replicas: [n(2)] };
  return Desired.parse({
    nodes: [node(1), node(2), node(3, { disk: 'ssd' })],
    datasets: opts.stateless ? [] : [dataset],
    applications: [{ name: 'redis', image: 'drover/redis:1', node_uuid: n(1), volumes: opts.stateless ? [] : [{ dataset_id: D, mountpoint: '/data' }], ...opts.app }],
  });
}

const holding = (map: Record<string, string[]>): SnapshotsOn => (node, id) => (id === D ? map[node]?.map((name) => ({ name })) : undefined);

describe('failover decision', () => {
  it('reads the creation time from a drover snapshot name, and nothing from other names', () => {
    expect(droverSnapshotTime(snap(T0 + 1234))).toBe(T0 + 1234);
    expect(droverSnapshotTime('drover-diverged-x')).toBeNull();
  });

  it('fails over an application whose datasets keep a replica, and one without datasets; not one without replicas', () => {
    expect(failoverCandidates(world(), n(1))).toEqual([{ failedNode: n(1), application: 'redis', datasetIds: [D] }]);
    expect(failoverCandidates(world({ stateless: true }), n(1))).toEqual([{ failedNode: n(1), application: 'redis', datasetIds: [] }]);
    expect(failoverCandidates(world({ replicas: 0 }), n(1))).toEqual([]);
  });

  it('chooses the up node holding the newest snapshot', () => {
    const choice = chooseFailoverTarget(world(), { failedNode: n(1), application: 'redis', datasetIds: [D] }, new Set([n(2), n(3)]), holding({ [n(2)]: [snap(T0), snap(T0 + 2000)], [n(3)]: [snap(T0 + 4000)] }));
    expect(choice).toEqual({ ok: true, target: { node: n(3), snapshots: [{ dataset_id: D, snapshot: snap(T0 + 4000), created_at: T0 + 4000 }], oldestNewestAt: T0 + 4000 } });
  });

  it('breaks a tie by the placement rules: constraints first, then the fewer applications', () => {
    const tied = holding({ [n(2)]: [snap(T0)], [n(3)]: [snap(T0)] });
    const subject = { failedNode: n(1), application: 'redis', datasetIds: [D] };
    const constrained = world({ app: { placement: { constraints: ['node.labels.disk == ssd'], affinity: [], anti_affinity: [], strategy: 'spread' } } });
    expect(chooseFailoverTarget(constrained, subject, new Set([n(2), n(3)]), tied)).toMatchObject({ ok: true, target: { node: n(3) } });
    const busy = Desired.parse({ ...world(), applications: [...world().applications, { name: 'other', image: 'x', node_uuid: n(2) }] });
    expect(chooseFailoverTarget(busy, subject, new Set([n(2), n(3)]), tied)).toMatchObject({ ok: true, target: { node: n(3) } });
  });

  it('names why when no node can take over: none up, or none holding a snapshot', () => {
    const subject = { failedNode: n(1), application: 'redis', datasetIds: [D] };
    expect(chooseFailoverTarget(world(), subject, new Set(), holding({}))).toEqual({ ok: false, reason: 'no node can take over redis: no other node is up' });
    expect(chooseFailoverTarget(world(), subject, new Set([n(2)]), holding({ [n(2)]: ['not-drover'] }))).toEqual({
      ok: false,
      reason: `no node can take over redis: 127.0.0.12 holds no snapshot of dataset ${D}`,
    });
  });

  it('flips the application and its dataset in one change, with a record whose generation is above every other and the data window as of the last report', () => {
    const desired = world();
    const choice = chooseFailoverTarget(desired, { failedNode: n(1), application: 'redis', datasetIds: [D] }, new Set([n(2)]), holding({ [n(2)]: [snap(T0)] }));
    if (!choice.ok) throw new Error(choice.reason);
    const out = failover(desired, { failedNode: n(1), application: 'redis', datasetIds: [D] }, choice.target, { now: T0 + 45_000, version: 7, failedSilentMs: 41_000, newId: () => 'ffffffff-ffff-4fff-8fff-ffffffffffff' });
    expect(out.desired.applications[0]!.node_uuid).toBe(n(2));
    expect(out.desired.datasets[0]).toMatchObject({ primary: n(2), replicas: [] });
    expect(out.record).toMatchObject({ from: n(1), to: n(2), phase: 'done', generation: 7, failover: { snapshot_age_seconds: 45, data_window_seconds: 4, failed_silent_ms: 41_000, snapshots: [{ dataset_id: D, snapshot: snap(T0) }] } });
    expect(Desired.parse(out.desired).migrations).toHaveLength(1);
    const again = failover(out.desired, { failedNode: n(2), application: 'redis', datasetIds: [D] }, { node: n(3), snapshots: [], oldestNewestAt: null }, { now: T0, version: 3, failedSilentMs: 0, newId: () => 'eeeeeeee-ffff-4fff-8fff-ffffffffffff' });
    expect(again.record.generation).toBe(8);
  });

  it('names each step a failover record learned, for the records logged under its id: ready on the chosen node, copies kept aside or rejoined', () => {
    const desired = world();
    const choice = chooseFailoverTarget(desired, { failedNode: n(1), application: 'redis', datasetIds: [D] }, new Set([n(2)]), holding({ [n(2)]: [snap(T0)] }));
    if (!choice.ok) throw new Error(choice.reason);
    const { record } = failover(desired, { failedNode: n(1), application: 'redis', datasetIds: [D] }, choice.target, { now: T0, version: 7, failedSilentMs: 11_000 });
    expect(failoverSteps(undefined, record)).toEqual([]);
    const ready = { ...record, failover: { ...record.failover!, routes_held_at: T0 + 100, ready_at: T0 + 1_500 } };
    expect(failoverSteps(record, ready)).toEqual([{ msg: 'failover application ready', fields: { node: n(2), sinceFailoverMs: 1_500 } }]);
    const kept = { ...ready, failover: { ...ready.failover, diverged: [{ dataset_id: D, node_uuid: n(1), name: `p/drover-diverged/${D}-g7`, kept_at: T0 + 9_000 }], rejoined: [{ dataset_id: D, node_uuid: n(3), at: T0 + 9_000 }] } };
    expect(failoverSteps(ready, kept).map((s) => s.msg)).toEqual(['failover copy kept aside', 'failover copy rejoined']);
    expect(failoverSteps(kept, kept)).toEqual([]);
  });
});

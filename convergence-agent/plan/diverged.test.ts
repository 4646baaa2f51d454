import { describe, expect, it } from 'vitest';
import { ADDRESS_A, DS_1, NODE_A, NODE_B, app, dataset, desired, localContainer, migration, zfsDataset } from '../testing/fixtures.ts';
import { plan } from './plan.ts';
import type { LocalObserved } from './types.ts';

// NODE_A failed; a failover moved `web` with DS_1 to NODE_B (generation 7). NODE_A is back.
const ctx = { nodeUuid: NODE_A, address: ADDRESS_A, now: 1_000_000 };
const web = app('web', { node_uuid: NODE_B, volumes: [{ dataset_id: DS_1, mountpoint: '/data' }] });
const failover = migration({
  phase: 'done',
  from: NODE_A,
  to: NODE_B,
  generation: 7,
  failover: { failed_silent_ms: 41_000, snapshots: [{ dataset_id: DS_1, snapshot: 'drover-20261206T115317816Z-0003', created_at: 0 }], snapshot_age_seconds: 41, ready_at: null, diverged: [] },
});
const view = (fields: Parameters<typeof desired>[0] = {}) => desired({ datasets: [dataset(DS_1, NODE_B, { replication: { replicas: 1 } })], applications: [web], migrations: [failover], ...fields });
const back = (o: Partial<LocalObserved> = {}): LocalObserved => ({ datasets: [zfsDataset(DS_1, { readonly: true })], snapshots: {}, containers: [], diverged: [], ...o });

describe('plan: a failed node that comes back keeps its copy aside', () => {
  it('moves the stale copy to drover-diverged before anything else touches the dataset', () => {
    const result = plan(view(), back({ datasets: [zfsDataset(DS_1, { readonly: false })] }), ctx);
    expect(result.changes).toEqual([{ kind: 'set-aside-diverged', datasetId: DS_1, generation: 7, promoted: 'drover-20261206T115317816Z-0003' }]);
  });

  it('waits while the old container still runs there (its stop comes first)', () => {
    const result = plan(view(), back({ containers: [localContainer('web', { running: true })] }), ctx);
    expect(result.changes.some((c) => c.kind === 'set-aside-diverged')).toBe(false);
    expect(result.changes.some((c) => c.kind === 'stop-container' || c.kind === 'remove-container')).toBe(true);
  });

  it('does nothing once the copy is kept, when the kept copies are unknown, or when the dataset is primary here again', () => {
    const kept = { datasetId: DS_1, name: `pool/drover-diverged/${DS_1}-g7`, generation: 7, usedBytes: 1 };
    expect(plan(view(), back({ diverged: [kept] }), ctx).changes).toEqual([]);
    expect(plan(view(), back({ diverged: null }), ctx).changes.some((c) => c.kind === 'set-aside-diverged')).toBe(false);
    expect(plan(view(), back({ diverged: undefined }), ctx).changes.some((c) => c.kind === 'set-aside-diverged')).toBe(false);
    const movedBack = view({ datasets: [dataset(DS_1, NODE_A, { replication: { replicas: 1 } })], applications: [{ ...web, node_uuid: NODE_A }] });
    expect(plan(movedBack, back(), ctx).changes.some((c) => c.kind === 'set-aside-diverged')).toBe(false);
  });

  it('plans nothing more once the copy rejoined in place as a replica (it held nothing after the promoted snapshot)', () => {
    const rejoined = { rejoined: true as const, datasetId: DS_1, name: `pool/drover/${DS_1}`, generation: 7, usedBytes: 0 };
    expect(plan(view(), back({ diverged: [rejoined] }), ctx).changes.some((c) => c.kind === 'set-aside-diverged' || c.kind === 'clear-rejoined-mark')).toBe(false);
  });

  it('clears the rejoined mark once the failover left the view (the rejoin was recorded): the copy is an ordinary replica again', () => {
    const rejoined = { rejoined: true as const, datasetId: DS_1, name: `pool/drover/${DS_1}`, generation: 7, usedBytes: 0 };
    expect(plan(view({ migrations: [] }), back({ diverged: [rejoined] }), ctx).changes).toContainEqual({ kind: 'clear-rejoined-mark', datasetId: DS_1 });
    // Unknown copies: nothing.
    expect(plan(view({ migrations: [] }), back({ diverged: null }), ctx).changes.some((c) => c.kind === 'clear-rejoined-mark')).toBe(false);
  });

  it('leaves the copy of the node a failover went to alone', () => {
    const result = plan(view(), back(), { ...ctx, nodeUuid: NODE_B });
    expect(result.changes.some((c) => c.kind === 'set-aside-diverged')).toBe(false);
  });
});

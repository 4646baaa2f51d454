import { describe, expect, it } from 'vitest';
import { ADDRESS_A, DS_1, NODE_A, NODE_B, app, dataset, desired, migration, zfsDataset } from '../testing/fixtures.ts';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';
import { plan } from './plan.ts';
import type { LocalObserved } from './types.ts';

// NODE_A failed; a failover promoted NODE_B's replica of DS_1 (generation 7). We are NODE_B.
const ctx = { nodeUuid: NODE_B, address: ADDRESS_A, now: 1_000_000 };
const web = app('web', { node_uuid: NODE_B, volumes: [{ dataset_id: DS_1, mountpoint: '/data' }] });
const record = (readyAt: number | null, routesHeldAt?: number | null) =>
  migration({
    phase: 'done',
    from: NODE_A,
    to: NODE_B,
    generation: 7,
    failover: { failed_silent_ms: 11_000, snapshots: [{ dataset_id: DS_1, snapshot: 'drover-20261206T115317816Z-0003', created_at: 0 }], snapshot_age_seconds: 13, data_window_seconds: 2, ready_at: readyAt, diverged: [], ...(routesHeldAt === undefined ? {} : { routes_held_at: routesHeldAt }) },
  });
const view = (readyAt: number | null = null, routesHeldAt?: number | null) =>
  desired({ datasets: [dataset(DS_1, NODE_B, { replication: { replicas: 1 } })], applications: [web], migrations: [record(readyAt, routesHeldAt)] });
const snap = (snapshot: string, createtxg: number): ZfsSnapshotInfo => ({ snapshot, guid: String(createtxg), createtxg, userrefs: 0 }) as ZfsSnapshotInfo;
const replica = (o: Partial<LocalObserved> = {}): LocalObserved => ({
  datasets: [zfsDataset(DS_1, { readonly: true, mounted: false })],
  snapshots: { [DS_1]: [snap('drover-20261206T115313000Z-0002', 5), snap('drover-20261206T115317816Z-0003', 9)] },
  containers: [],
  diverged: [],
  ...o,
});

describe('plan: promoting a replica after a failover', () => {
  it('rolls the replica back to its newest received snapshot in the step that makes it writable', () => {
    const changes = plan(view(), replica(), ctx).changes.filter((c) => c.kind === 'set-dataset-readonly');
    expect(changes).toEqual([{ kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false, mount: true, rollbackTo: 'drover-20261206T115317816Z-0003' }]);
  });

  it('waits when its snapshots are unknown this pass, saying why', () => {
    const result = plan(view(), replica({ snapshots: null }), ctx);
    expect(result.changes.some((c) => c.kind === 'set-dataset-readonly')).toBe(false);
    expect(result.blocked).toContainEqual({ subject: `dataset:${DS_1}`, reason: 'promoted by a failover, but its snapshots are unknown this pass' });
  });

  it('never rolls back a copy that already served: mounted, or the record says the application was ready', () => {
    const mounted = plan(view(), replica({ datasets: [zfsDataset(DS_1, { readonly: true, mounted: true })] }), ctx).changes.find((c) => c.kind === 'set-dataset-readonly');
    expect(mounted).toEqual({ kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false });
    const ready = plan(view(1), replica(), ctx).changes.find((c) => c.kind === 'set-dataset-readonly');
    expect(ready).toEqual({ kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false, mount: true });
  });

  it('does not promote until the proxies hold the route, saying why; then promotes', () => {
    const waiting = plan(view(null, null), replica(), ctx);
    expect(waiting.changes.some((c) => c.kind === 'set-dataset-readonly' || c.kind === 'start-container')).toBe(false);
    expect(waiting.blocked).toContainEqual({ subject: `dataset:${DS_1}`, reason: 'promoted by a failover; waiting for the proxies to hold its route' });
    const held = plan(view(null, 1_000), replica(), ctx).changes.filter((c) => c.kind === 'set-dataset-readonly');
    expect(held).toEqual([{ kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false, mount: true, rollbackTo: 'drover-20261206T115317816Z-0003' }]);
  });
});

// Issue 15 §4, "replicas stay replicas", as the ordinary planner keeps it on a replica node.
import { describe, expect, it } from 'vitest';
import { ADDRESS_A, DS_1, NODE_A, NODE_B, app, dataset, desired, localContainer, zfsDataset } from '../testing/fixtures.ts';
import { plan } from '../plan/plan.ts';
import type { LocalObserved } from '../plan/types.ts';

const ctx = { nodeUuid: NODE_A, address: ADDRESS_A, now: 1_000_000 };
const POLICY = { replicas: 1, interval_seconds: 10, retention: { primary: '1x1m(keep=all)', replicas: '1x1m(keep=all)' } };
// This node (A) is a replica of DS_1; B is its primary and runs the application.
const view = desired({
  datasets: [dataset(DS_1, NODE_B, { replication: POLICY, replicas: [NODE_A] })],
  applications: [app('db', { node_uuid: NODE_B, volumes: [{ dataset_id: DS_1, mountpoint: '/data' }] })],
});
const observed = (o: Partial<LocalObserved>): LocalObserved => ({ datasets: [], snapshots: {}, containers: [], ...o });

describe('a replica node', () => {
  it('makes a writable replica read-only again and never destroys it', () => {
    const changes = plan(view, observed({ datasets: [zfsDataset(DS_1, { readonly: false, mounted: false })] }), ctx).changes;
    expect(changes).toEqual([{ kind: 'set-dataset-readonly', datasetId: DS_1, readonly: true }]);
  });

  it('leaves a read-only unmounted replica alone: no mount, no destroy, no create', () => {
    expect(plan(view, observed({ datasets: [zfsDataset(DS_1, { readonly: true, mounted: false })] }), ctx).changes).toEqual([]);
    // Absent replica (not seeded yet): the primary's agent sends it; nothing is created here.
    expect(plan(view, observed({}), ctx).changes).toEqual([]);
  });

  it('never starts the application on the replica node', () => {
    const changes = plan(view, observed({ datasets: [zfsDataset(DS_1, { readonly: true, mounted: false })] }), ctx).changes;
    expect(changes.filter((c) => c.kind === 'start-container' || c.kind === 'prestart-container')).toEqual([]);
    // And a container of it found here (an earlier stay) is stopped, not left running.
    const stale = plan(view, observed({ datasets: [zfsDataset(DS_1, { readonly: true })], containers: [localContainer('db', { running: true })] }), ctx).changes;
    expect(stale.map((c) => c.kind)).not.toContain('start-container');
  });
});

import { describe, expect, it } from 'vitest';
import { ADDRESS_A, DS_1, DS_2, NODE_A, NODE_B, app, dataset, desired, localContainer, migration, zfsDataset } from '../testing/fixtures.ts';
import { containerSpec } from './container-spec.ts';
import { handoffChanges, handoffKeys } from './handoff.ts';
import { plan } from './plan.ts';
import type { Change } from './types.ts';

// NODE_A is this node; the migration moves `web` with DS_1 from NODE_B, its container started behind a gate.
const ctx = { nodeUuid: NODE_A, address: ADDRESS_A, now: 1_000_000, warmStart: true };
const M = 'cccccccc-0000-4000-8000-000000000001';
const web = app('web', { volumes: [{ dataset_id: DS_1, mountpoint: '/data' }] });
const mountpoints = new Map([[DS_1, `/mnt/drover/${DS_1}`]]);
const hash = containerSpec(web, { nodeUuid: NODE_A, address: ADDRESS_A, generation: 9, mountpoints }).configHash;
const gated = localContainer('web', { configHash: hash, mountSources: [`/mnt/drover/${DS_1}`], generation: 9, gate: { id: M, state: 'closed', openedAt: null } });
const view = (phase: 'cutover' | 'handoff') => {
  const here = phase === 'handoff';
  return desired({
    datasets: [dataset(DS_1, here ? NODE_A : NODE_B), dataset(DS_2, NODE_A)],
    applications: [{ ...web, node_uuid: here ? NODE_A : NODE_B }],
    migrations: [migration({ phase, from: NODE_B, to: NODE_A, generation: 9 })],
  });
};
// What the last pass saw, during cutover: the replica read-only and unmounted, the gate closed;
// and another dataset of this node that is read-only for a reason of its own.
const lastPass = { datasets: [zfsDataset(DS_1, { readonly: true, mounted: false }), zfsDataset(DS_2, { readonly: true, mounted: false })], snapshots: {}, containers: [gated] };

describe('plan/handoff: the target steps taken before a discovery', () => {
  it('names the migrations to this node at handoff, by id and generation, and none in cutover or away from here', () => {
    expect(handoffKeys(view('handoff'), NODE_A)).toEqual([`${M}:9`]);
    expect(handoffKeys(view('cutover'), NODE_A)).toEqual([]);
    expect(handoffKeys(view('handoff'), NODE_B)).toEqual([]);
  });

  it("picks the replica made writable and mounted, then the gate opened, from a plan of the new view on the last pass's observation", () => {
    const d = view('handoff');
    const planned = plan(d, lastPass, ctx).changes;
    expect(handoffChanges(d, handoffKeys(d, NODE_A), planned)).toEqual([
      { kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false, mount: true },
      { kind: 'open-container-gate', name: 'drover-web', containerId: gated.id, gateId: M, after: [`dataset:${DS_1}`] },
    ]);
  });

  it("leaves everything else to the pass that discovers: other datasets, containers started without a gate, read-only steps, rollbacks", () => {
    const d = view('handoff');
    const others: Change[] = [
      { kind: 'set-dataset-readonly', datasetId: DS_2, readonly: false, mount: true },
      { kind: 'mount-dataset', datasetId: DS_2 },
      { kind: 'set-dataset-readonly', datasetId: DS_1, readonly: true },
      { kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false, rollbackTo: 'drover-x' },
      { kind: 'open-container-gate', name: 'drover-other', containerId: 'x', gateId: 'another-migration' },
      { kind: 'start-container', spec: containerSpec(web, { nodeUuid: NODE_A, address: ADDRESS_A, generation: 9, mountpoints }) },
    ];
    expect(handoffChanges(d, handoffKeys(d, NODE_A), others)).toEqual([]);
    expect(handoffChanges(d, handoffKeys(d, NODE_A), [{ kind: 'mount-dataset', datasetId: DS_1 }])).toEqual([{ kind: 'mount-dataset', datasetId: DS_1 }]);
  });

  it('picks nothing for a migration that is not named (already stepped, or at another generation)', () => {
    const d = view('handoff');
    const planned = plan(d, lastPass, ctx).changes;
    expect(handoffChanges(d, [], planned)).toEqual([]);
    expect(handoffChanges(d, [`${M}:8`], planned)).toEqual([]);
  });

  it('opens no gate while the view is still in cutover: the planner proposes none', () => {
    const d = view('cutover');
    expect(handoffChanges(d, [`${M}:9`], plan(d, lastPass, ctx).changes)).toEqual([]);
  });
});

import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { Executor } from '../execute.ts';
import { RestartLedger } from '../restart-ledger.ts';
import { FakeContainerRuntime } from '../testing/fake-container-runtime.ts';
import { FakeDatasetStore } from '../testing/fake-dataset-store.ts';
import { ADDRESS_A, DS_1, DS_2, NODE_A, NODE_B, app, dataset, desired, migration } from '../testing/fixtures.ts';
import { correlations, corrOf } from './correlation.ts';
import { containerSpec } from './container-spec.ts';
import { plan } from './plan.ts';
import type { Change } from './types.ts';

// NODE_A failed; a failover (generation 7) promoted NODE_B's replica of DS_1 for `web`.
const FAILOVER = 'ffffffff-0000-4000-8000-00000000000f';
const MOVE = 'cccccccc-0000-4000-8000-000000000001';
const record = (o: { readyAt?: number | null; diverged?: string[]; rejoined?: string[] } = {}) =>
  migration({
    id: FAILOVER,
    phase: 'done',
    from: NODE_A,
    to: NODE_B,
    generation: 7,
    failover: {
      failed_silent_ms: 11_000,
      snapshots: [{ dataset_id: DS_1, snapshot: 'drover-20261206T115317816Z-0003', created_at: 0 }],
      snapshot_age_seconds: 13,
      data_window_seconds: 2,
      ready_at: o.readyAt ?? null,
      routes_held_at: 5,
      diverged: (o.diverged ?? []).map((id) => ({ dataset_id: id, node_uuid: NODE_A, name: `pool/drover-diverged/${id}-g7`, kept_at: 9 })),
      rejoined: (o.rejoined ?? []).map((id) => ({ dataset_id: id, node_uuid: NODE_A, at: 9 })),
    },
  });
const web = app('web', { node_uuid: NODE_B, volumes: [{ dataset_id: DS_1, mountpoint: '/data' }] });
const view = (...migrations: ReturnType<typeof migration>[]) => desired({ datasets: [dataset(DS_1, NODE_B, { replication: { replicas: 1 } })], applications: [web], migrations });
const spec = containerSpec(web, { nodeUuid: NODE_B, address: ADDRESS_A, generation: 7, mountpoints: new Map([[DS_1, '/fakepool/drover/ds1']]) });

describe('correlation ids of an agent\'s changes', () => {
  it('gives the promotion\'s changes on the chosen node the failover\'s id: rollback and make-writable, mount, container start', () => {
    const lent = correlations(view(record()), NODE_B);
    const changes: Change[] = [
      { kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false, mount: true, rollbackTo: 'drover-20261206T115317816Z-0003' },
      { kind: 'mount-dataset', datasetId: DS_1 },
      { kind: 'start-container', spec, after: [`dataset:${DS_1}`] },
    ];
    expect(changes.map((c) => corrOf(c, lent))).toEqual([FAILOVER, FAILOVER, FAILOVER]);
  });

  it('gives the failed node\'s changes when it comes back the failover\'s id: its container stopped, its copy set aside', () => {
    const lent = correlations(view(record()), NODE_A);
    expect(corrOf({ kind: 'stop-container', name: 'drover-web', containerId: 'x', reason: 'placed elsewhere' }, lent)).toBe(FAILOVER);
    expect(corrOf({ kind: 'set-aside-diverged', datasetId: DS_1, generation: 7, promoted: 'drover-20261206T115317816Z-0003' }, lent)).toBe(FAILOVER);
  });

  it('stops lending the id once the application ran on the chosen node, and once the failed node\'s copy was recorded', () => {
    expect(correlations(view(record({ readyAt: 10 })), NODE_B).size).toBe(0);
    expect(correlations(view(record({ diverged: [DS_1] })), NODE_A).size).toBe(0);
    expect(correlations(view(record({ rejoined: [DS_1] })), NODE_A).size).toBe(0);
    // An operator placed it back on the failed node: its changes there are not the failover's.
    const back = desired({ datasets: [dataset(DS_1, NODE_A)], applications: [app('web', { node_uuid: NODE_A, volumes: [{ dataset_id: DS_1, mountpoint: '/data' }] })], migrations: [record()] });
    expect(correlations(back, NODE_A).size).toBe(0);
  });

  it('gives a move\'s container and dataset changes its id on either node, and nothing to a finished move or another node', () => {
    const move = migration({ id: MOVE, dataset_ids: [DS_1, DS_2], phase: 'handoff' });
    expect(corrOf({ kind: 'open-container-gate', name: 'drover-web', containerId: 'x', gateId: MOVE }, correlations(view(move), NODE_B))).toBe(MOVE);
    expect(corrOf({ kind: 'set-dataset-readonly', datasetId: DS_2, readonly: true }, correlations(view(move), NODE_A))).toBe(MOVE);
    expect(correlations(view(migration({ id: MOVE, phase: 'done' })), NODE_B).size).toBe(0);
    expect(correlations(view(move), '33333333-3333-4333-8333-333333333333').size).toBe(0);
  });

  it('prefers the newer record where two name one subject, and keeps a change\'s own migration id', () => {
    const older = migration({ id: MOVE, phase: 'handoff', generation: 3 });
    const lent = correlations(view(record(), older), NODE_B);
    expect(corrOf({ kind: 'mount-dataset', datasetId: DS_1 }, lent)).toBe(FAILOVER);
    expect(corrOf({ kind: 'post-migration-update', migrationId: MOVE, generation: 3, phase: 'done' }, lent)).toBe(MOVE);
    expect(corrOf({ kind: 'create-dataset', datasetId: DS_2, maximumSize: null }, lent)).toBeNull();
    expect(correlations(null, NODE_B).size).toBe(0);
  });

  it('logs the planned promotion\'s rollback under the failover\'s id when the executor applies it', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(...chunk.toString().split('\n').filter(Boolean)), done()) }));
    const clock = new FakeClock();
    const store = new FakeDatasetStore({ pool: 'fakepool' });
    await store.createDataset(DS_1, { maximumSize: null });
    const snap = await store.createSnapshot(DS_1, 'drover-20261206T115317816Z-0003');
    await store.setReadonly(DS_1, true);
    await store.unmount(DS_1);
    const executor = new Executor({ store, runtime: new FakeContainerRuntime(() => clock.now()), ledger: new RestartLedger(), clock, log });
    const observed = { datasets: await store.listDatasets(), snapshots: { [DS_1]: [snap] }, containers: [], diverged: [] };
    const v = view(record());
    const planned = plan(v, observed, { nodeUuid: NODE_B, address: ADDRESS_A, now: 1_000_000 });
    expect(planned.changes.map((c) => c.kind)).toContain('set-dataset-readonly');
    await executor.execute(planned.changes, correlations(v, NODE_B));
    const records = lines.map((l) => JSON.parse(l) as { msg: string; change?: string; corr?: string });
    expect(records.filter((r) => r.corr === FAILOVER).map((r) => `${r.change} ${r.msg}`)).toContain('set-dataset-readonly change applied');
  });
});

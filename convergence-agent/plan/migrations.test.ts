import { describe, expect, it } from 'vitest';
import { ADDRESS_A, DS_1, NODE_A, NODE_B, app, dataset, desired, localContainer, migration, zfsDataset } from '../testing/fixtures.ts';
import { containerSpec } from './container-spec.ts';
import { RERUN_AFTER_MS } from './migrations.ts';
import { plan } from './plan.ts';
import type { LocalObserved, MigrationJobState } from './types.ts';

// NODE_A is this node throughout; the migration moves app `web` with DS_1.
const ctx = { nodeUuid: NODE_A, address: ADDRESS_A, now: 1_000_000 };
const M = 'cccccccc-0000-4000-8000-000000000001';
const web = app('web', { volumes: [{ dataset_id: DS_1, mountpoint: '/data' }] });
const job = (fields: Partial<MigrationJobState> = {}): MigrationJobState => ({ migrationId: M, stage: 'pre-copy', outcome: null, endedAt: null, error: null, ...fields });
const mountpoints = new Map([[DS_1, `/mnt/drover/${DS_1}`]]);
const hash = containerSpec(web, { nodeUuid: NODE_A, address: ADDRESS_A, generation: 0, mountpoints }).configHash;
/** The container of `web` as the planner would have started it (same config hash). */
const webContainer = (fields: Parameters<typeof localContainer>[1] = {}) => localContainer('web', { configHash: hash, mountSources: [`/mnt/drover/${DS_1}`], ...fields });
const here = (o: Partial<LocalObserved> = {}): LocalObserved => ({
  datasets: [zfsDataset(DS_1)],
  snapshots: {},
  containers: [webContainer()],
  ...o,
});

describe('plan: the source of a migration', () => {
  const source = (phase: 'pending' | 'pre-copy' | 'cutover') =>
    desired({ datasets: [dataset(DS_1, NODE_A)], applications: [web], migrations: [migration({ phase, from: NODE_A, to: NODE_B })] });

  it('starts the migration job for a pending migration and leaves the running application alone', () => {
    expect(plan(source('pending'), here(), ctx)).toEqual({ changes: [{ kind: 'run-migration', migration: source('pending').migrations[0] }], blocked: [], recheckAfterMs: null });
  });

  it('keeps restarting a crashed application during pre-copy', () => {
    const crashed = webContainer({ running: false, status: 'exited', exitCode: 1, finishedAt: 0 });
    const d = desired({ datasets: [dataset(DS_1, NODE_A)], applications: [{ ...web, restart_policy: { name: 'always' } }], migrations: [migration({ phase: 'pre-copy' })] });
    const result = plan(d, here({ containers: [crashed], migrationJobs: [job()] }), ctx);
    expect(result.changes.map((c) => c.kind)).toEqual(['restart-container']);
  });

  it('neither restarts the application nor makes its dataset writable while the job is in cutover, even when the view still says pre-copy', () => {
    const stopped = webContainer({ running: false, status: 'exited', exitCode: 0, finishedAt: 0 });
    const d = desired({ datasets: [dataset(DS_1, NODE_A)], applications: [{ ...web, restart_policy: { name: 'always' } }], migrations: [migration({ phase: 'pre-copy' })] });
    const result = plan(d, here({ datasets: [zfsDataset(DS_1, { readonly: true })], containers: [stopped], migrationJobs: [job({ stage: 'cutover' })] }), ctx);
    expect(result.changes).toEqual([]);
    expect(result.blocked).toEqual([{ subject: `migration:${M}`, reason: `moving to node ${NODE_B}: cutover` }]);
  });

  it('keeps the application claimed after its job handed off, until the view catches up', () => {
    const d = source('cutover');
    const result = plan(d, here({ containers: [], datasets: [zfsDataset(DS_1, { readonly: true })], migrationJobs: [job({ stage: 'handed-off', outcome: 'handed-off', endedAt: 999_000 })] }), ctx);
    expect(result.changes).toEqual([]);
    expect(result.blocked).toEqual([{ subject: `migration:${M}`, reason: "migration job ended (handed-off); waiting for the control service's view" }]);
  });

  it('starts a new job for a migration in cutover that no job of this agent runs (after a restart: it aborts)', () => {
    expect(plan(source('cutover'), here({ migrationJobs: [] }), ctx).changes).toEqual([{ kind: 'run-migration', migration: source('cutover').migrations[0] }]);
  });

  it('starts a job that stopped without a verdict again, after a pause', () => {
    const stopped = job({ stage: 'cutover', outcome: 'stopped', endedAt: ctx.now - 1_000, error: 'control unreachable' });
    const early = plan(source('cutover'), here({ migrationJobs: [stopped] }), ctx);
    expect(early.changes).toEqual([]);
    expect(early.recheckAfterMs).toBe(RERUN_AFTER_MS - 1_000);
    const later = plan(source('cutover'), here({ migrationJobs: [stopped] }), { ...ctx, now: ctx.now + RERUN_AFTER_MS });
    expect(later.changes.map((c) => c.kind)).toEqual(['run-migration']);
  });

  it('gives the application back to the ordinary planner once its job aborted (failed accepted)', () => {
    const d = desired({ datasets: [dataset(DS_1, NODE_A)], applications: [web], migrations: [migration({ phase: 'pre-copy' })] });
    const result = plan(d, here({ containers: [], datasets: [zfsDataset(DS_1, { readonly: true })], migrationJobs: [job({ stage: 'cutover', outcome: 'aborted', endedAt: 1 })] }), ctx);
    expect(result.changes[0]).toEqual({ kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false });
    expect(result.changes[1]).toMatchObject({ kind: 'start-container', after: [`dataset:${DS_1}`] });
  });

  it('after handoff, keeps the source copy read-only and removes the stopped application', () => {
    const d = desired({
      datasets: [dataset(DS_1, NODE_B)],
      applications: [{ ...web, node_uuid: NODE_B }],
      migrations: [migration({ phase: 'handoff' })],
    });
    const stopped = webContainer({ running: false, status: 'exited', exitCode: 0 });
    const result = plan(d, here({ containers: [stopped], datasets: [zfsDataset(DS_1, { readonly: true })], migrationJobs: [job({ stage: 'handed-off', outcome: 'handed-off' })] }), ctx);
    expect(result.changes).toEqual([{ kind: 'remove-container', name: 'drover-web', containerId: 'id-web' }]);
  });
});

describe('plan: the target of a migration', () => {
  const toHere = (phase: 'pre-copy' | 'handoff' | 'release', fields: Partial<Parameters<typeof app>[1]> = {}) =>
    desired({
      datasets: [dataset(DS_1, phase === 'pre-copy' ? NODE_B : NODE_A)],
      applications: [{ ...web, node_uuid: phase === 'pre-copy' ? NODE_B : NODE_A, ...fields } as typeof web],
      migrations: [migration({ phase, from: NODE_B, to: NODE_A, generation: 9 })],
    });

  it('keeps an arriving replica read-only and does not create it empty', () => {
    const writable = plan(toHere('pre-copy'), here({ containers: [], datasets: [zfsDataset(DS_1, { mounted: false })] }), ctx);
    expect(writable.changes).toEqual([{ kind: 'set-dataset-readonly', datasetId: DS_1, readonly: true }]);
  });

  it('makes a received replica writable, mounts it and starts the application after handoff, under the migration generation', () => {
    const received = zfsDataset(DS_1, { readonly: true, mounted: false });
    // One pass: the replica is made writable and mounted, then the application starts on it.
    const [step, start] = plan(toHere('handoff'), here({ containers: [], datasets: [received] }), ctx).changes;
    expect(step).toEqual({ kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false, mount: true });
    expect(start).toMatchObject({ kind: 'start-container', after: [`dataset:${DS_1}`] });
    expect(start?.kind === 'start-container' && start.spec.labels['drover.generation']).toBe('9');
  });

  it('posts release once the application runs here, then done', () => {
    const running = webContainer({ generation: 9 });
    expect(plan(toHere('handoff'), here({ containers: [running] }), ctx).changes).toEqual([
      { kind: 'post-migration-update', migrationId: M, generation: 9, phase: 'release' },
    ]);
    expect(plan(toHere('release'), here({ containers: [running] }), ctx).changes).toEqual([
      { kind: 'post-migration-update', migrationId: M, generation: 9, phase: 'done' },
    ]);
  });

  it('waits for a health check to pass before release', () => {
    const d = toHere('handoff', { health_check: { type: 'tcp', port: 6379, initial_delay_seconds: 0, period_seconds: 1, timeout_seconds: 1, failure_threshold: 3 } });
    const starting = webContainer({ generation: 9, health: 'starting' });
    expect(plan(d, here({ containers: [starting] }), ctx).changes).toEqual([]);
    expect(plan(d, here({ containers: [{ ...starting, health: 'healthy' }] }), ctx).changes.map((c) => c.kind)).toEqual(['post-migration-update']);
  });

  it('names the container whose first passing health check is the release, and no other', () => {
    const d = toHere('handoff', { health_check: { type: 'tcp', port: 6379, initial_delay_seconds: 0, period_seconds: 1, timeout_seconds: 1, failure_threshold: 3 } });
    const starting = webContainer({ generation: 9, health: 'starting' });
    expect(plan(d, here({ containers: [starting] }), ctx).releaseWhenHealthy).toEqual([{ migrationId: M, generation: 9, containerId: starting.id }]);
    // Not of the migration's generation, not running, or no health check to wait for: none.
    expect(plan(d, here({ containers: [{ ...starting, generation: 3 }] }), ctx).releaseWhenHealthy).toBeUndefined();
    expect(plan(d, here({ containers: [{ ...starting, running: false }] }), ctx).releaseWhenHealthy).toBeUndefined();
    expect(plan(toHere('handoff'), here({ containers: [webContainer({ generation: 9 })] }), ctx).releaseWhenHealthy).toBeUndefined();
  });

  it('does not count a container of an older generation as ready', () => {
    const old = webContainer({ generation: 3 });
    expect(plan(toHere('handoff'), here({ containers: [old] }), ctx).changes.filter((c) => c.kind === 'post-migration-update')).toEqual([]);
  });

  it('never starts an application placed here before its migration to here handed off', () => {
    const d = desired({ datasets: [dataset(DS_1, NODE_A)], applications: [web], migrations: [migration({ phase: 'cutover', from: NODE_B, to: NODE_A })] });
    const result = plan(d, here({ containers: [] }), ctx);
    expect(result.changes).toEqual([]);
    expect(result.blocked).toContainEqual({ subject: `migration:${M}`, reason: 'application web waits for handoff (phase cutover)' });
  });

  it('releases a dataset moved alone once it is writable and mounted here', () => {
    const d = desired({ datasets: [dataset(DS_1, NODE_A)], migrations: [migration({ application: null, phase: 'handoff', from: NODE_B, to: NODE_A })] });
    expect(plan(d, here({ containers: [], datasets: [zfsDataset(DS_1, { mounted: false })] }), ctx).changes).toEqual([{ kind: 'mount-dataset', datasetId: DS_1 }]);
    expect(plan(d, here({ containers: [] }), ctx).changes).toEqual([{ kind: 'post-migration-update', migrationId: M, generation: 3, phase: 'release' }]);
  });
});

describe('plan: a warm start on the target (the container started behind a gate before handoff)', () => {
  const warm = { ...ctx, warmStart: true };
  const toHere = (phase: 'pre-copy' | 'cutover' | 'handoff' | 'failed', fields: Partial<Parameters<typeof app>[1]> = {}) => {
    const handedOff = phase === 'handoff';
    return desired({
      datasets: [dataset(DS_1, handedOff ? NODE_A : NODE_B)],
      applications: [{ ...web, node_uuid: handedOff ? NODE_A : NODE_B, ...fields } as typeof web],
      migrations: [migration({ phase, from: NODE_B, to: NODE_A, generation: 9 })],
    });
  };
  const replica = zfsDataset(DS_1, { readonly: true, mounted: false });
  const gated = (state: 'closed' | 'open' | 'missing', fields: Parameters<typeof webContainer>[0] = {}) =>
    webContainer({ generation: 9, gate: { id: M, state, openedAt: state === 'open' ? ctx.now : null }, ...fields });

  it('starts the container behind a gate once the replica is here, unmounted, under the migration generation', () => {
    const [change, ...rest] = plan(toHere('pre-copy'), here({ containers: [], datasets: [replica] }), warm).changes;
    expect(rest).toEqual([]);
    expect(change).toMatchObject({ kind: 'prestart-container', gateId: M, spec: { name: 'drover-web', binds: [{ source: `/mnt/drover/${DS_1}`, target: '/data' }] } });
    expect(change?.kind === 'prestart-container' && change.spec.labels['drover.generation']).toBe('9');
    expect(change?.kind === 'prestart-container' && change.spec.configHash).toBe(hash);
  });

  it('does nothing of the kind without warm start on this node', () => {
    expect(plan(toHere('pre-copy'), here({ containers: [], datasets: [replica] }), ctx).changes).toEqual([]);
  });

  it('leaves a gated container waiting until handoff', () => {
    const result = plan(toHere('cutover'), here({ containers: [gated('closed')], datasets: [replica] }), warm);
    expect(result.changes).toEqual([]);
    expect(result.blocked).toContainEqual({ subject: `migration:${M}`, reason: 'drover-web started behind its gate; waits for handoff (phase cutover)' });
  });

  it('takes away a container left from an earlier stay before it warm-starts', () => {
    const old = webContainer({ generation: 2, running: false, status: 'exited' });
    expect(plan(toHere('pre-copy'), here({ containers: [old], datasets: [replica] }), warm).changes).toEqual([
      { kind: 'remove-container', name: 'drover-web', containerId: 'id-web' },
    ]);
  });

  it('removes a gated container that stopped, with its gate, and starts another', () => {
    const exited = gated('closed', { running: false, status: 'exited', exitCode: 143 });
    expect(plan(toHere('pre-copy'), here({ containers: [exited], datasets: [replica] }), warm).changes).toEqual([
      { kind: 'remove-container', name: 'drover-web', containerId: 'id-web', gateId: M },
    ]);
  });

  it('unmounts a read-only copy an earlier stay left here before it warm-starts, unless a container binds it', () => {
    const mounted = zfsDataset(DS_1, { readonly: true, mounted: true });
    expect(plan(toHere('pre-copy'), here({ containers: [], datasets: [mounted] }), warm).changes).toEqual([{ kind: 'unmount-dataset', datasetId: DS_1 }]);
    const other = localContainer('other', { mountSources: [`/mnt/drover/${DS_1}`] });
    expect(plan(toHere('pre-copy'), here({ containers: [other], datasets: [mounted] }), warm).changes.map((c) => c.kind)).not.toContain('unmount-dataset');
  });

  it('after handoff, makes the replica writable and mounted, then opens the gate in the same pass', () => {
    const result = plan(toHere('handoff'), here({ containers: [gated('closed')], datasets: [replica] }), warm);
    expect(result.changes).toEqual([
      { kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false, mount: true },
      { kind: 'open-container-gate', name: 'drover-web', containerId: 'id-web', gateId: M, after: [`dataset:${DS_1}`] },
    ]);
  });

  it('does not release while the gate is closed, and releases once it opened and the application is healthy', () => {
    const check = { type: 'tcp' as const, port: 6379, initial_delay_seconds: 0, period_seconds: 1, timeout_seconds: 1, failure_threshold: 3 };
    const d = toHere('handoff', { health_check: check });
    const closed = plan(d, here({ containers: [gated('closed', { health: 'healthy' })] }), warm);
    expect(closed.changes.filter((c) => c.kind === 'post-migration-update')).toEqual([]);
    expect(plan(d, here({ containers: [gated('open', { health: 'healthy' })] }), warm).changes).toEqual([
      { kind: 'post-migration-update', migrationId: M, generation: 9, phase: 'release' },
    ]);
  });

  it('stops, then removes with its gate, a gated container whose migration failed', () => {
    expect(plan(toHere('failed'), here({ containers: [gated('closed')], datasets: [replica] }), warm).changes).toEqual([
      { kind: 'stop-container', name: 'drover-web', containerId: 'id-web', reason: 'not desired on this node' },
    ]);
    const stopped = gated('closed', { running: false, status: 'exited', exitCode: 143 });
    expect(plan(toHere('failed'), here({ containers: [stopped], datasets: [replica] }), warm).changes).toEqual([
      { kind: 'remove-container', name: 'drover-web', containerId: 'id-web', gateId: M },
    ]);
  });

  it('after handoff, replaces a gated container whose gate directory is gone', () => {
    expect(plan(toHere('handoff'), here({ containers: [gated('missing')] }), warm).changes).toEqual([
      { kind: 'stop-container', name: 'drover-web', containerId: 'id-web', reason: 'its gate is gone' },
    ]);
  });
});

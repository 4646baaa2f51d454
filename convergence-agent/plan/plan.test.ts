import { describe, expect, it } from 'vitest';
import { ADDRESS_A, DS_1, DS_2, NODE_A, NODE_B, app, dataset, desired, localContainer, migration, zfsDataset } from '../testing/fixtures.ts';
import { containerSpec } from './container-spec.ts';
import { plan } from './plan.ts';
import type { LocalObserved } from './types.ts';

const ctx = { nodeUuid: NODE_A, address: ADDRESS_A, now: 1_000_000 };
const empty: LocalObserved = { datasets: [], snapshots: {}, containers: [] };
const observed = (o: Partial<LocalObserved>): LocalObserved => ({ ...empty, ...o });
const specOf = (a: ReturnType<typeof app>, mounts: [string, string][] = []) =>
  containerSpec(a, { nodeUuid: NODE_A, address: ADDRESS_A, generation: 0, mountpoints: new Map(mounts) });

describe('plan: datasets', () => {
  it('does nothing without a desired configuration that knows this node', () => {
    const c = localContainer('web');
    expect(plan(null, observed({ containers: [c] }), ctx).changes).toEqual([]);
    expect(plan(desired({ node: null }), observed({ containers: [c] }), ctx).changes).toEqual([]);
  });

  it('creates a dataset with its size limit where this node is primary', () => {
    const d = desired({ datasets: [dataset(DS_1, NODE_A, { maximum_size: 67108864 })] });
    expect(plan(d, empty, ctx).changes).toEqual([{ kind: 'create-dataset', datasetId: DS_1, maximumSize: 67108864 }]);
  });

  it('waits for a dataset a migration is bringing here instead of creating an empty one', () => {
    const d = desired({ datasets: [dataset(DS_1, NODE_A)], migrations: [migration({ from: NODE_B, to: NODE_A, phase: 'pending' })] });
    const result = plan(d, empty, ctx);
    expect(result.changes).toEqual([]);
    expect(result.blocked).toContainEqual({ subject: `dataset:${DS_1}`, reason: 'waiting for its data from a migration' });
  });

  it('makes a primary dataset writable and mounted (one step), then the right size', () => {
    const d = desired({ datasets: [dataset(DS_1, NODE_A, { maximum_size: 67108864 })] });
    const step = (z: ReturnType<typeof zfsDataset>) => plan(d, observed({ datasets: [z] }), ctx).changes;
    expect(step(zfsDataset(DS_1, { readonly: true, mounted: false }))).toEqual([{ kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false, mount: true }]);
    expect(step(zfsDataset(DS_1, { readonly: true }))).toEqual([{ kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false }]);
    expect(step(zfsDataset(DS_1, { mounted: false }))).toEqual([{ kind: 'mount-dataset', datasetId: DS_1 }]);
    expect(step(zfsDataset(DS_1))).toEqual([{ kind: 'set-dataset-size', datasetId: DS_1, maximumSize: 67108864 }]);
    expect(step(zfsDataset(DS_1, { refquota: 67108864 }))).toEqual([]);
  });

  it('makes a writable copy read-only where this node is not primary', () => {
    const d = desired({ datasets: [dataset(DS_1, NODE_B)] });
    expect(plan(d, observed({ datasets: [zfsDataset(DS_1)] }), ctx).changes).toEqual([
      { kind: 'set-dataset-readonly', datasetId: DS_1, readonly: true },
    ]);
    expect(plan(d, observed({ datasets: [zfsDataset(DS_1, { readonly: true })] }), ctx).changes).toEqual([]);
  });

  it('keeps a replica writable while a running container uses it, and says why', () => {
    const d = desired({ datasets: [dataset(DS_1, NODE_B)], applications: [app('web', { volumes: [{ dataset_id: DS_1, mountpoint: '/data' }] })] });
    const c = localContainer('web', { mountSources: [`/mnt/drover/${DS_1}`] });
    const result = plan(d, observed({ datasets: [zfsDataset(DS_1)], containers: [c] }), ctx);
    expect(result.changes).toEqual([]);
    expect(result.blocked).toContainEqual({ subject: `dataset:${DS_1}`, reason: 'not primary here, but used by running drover-web' });
  });

  it('destroys a dataset only on a tombstone, once no container uses it and no lease holds it', () => {
    const tomb = dataset(DS_1, NODE_A, { deleted: true });
    const here = [zfsDataset(DS_1)];
    expect(plan(desired({ datasets: [tomb] }), observed({ datasets: here }), ctx).changes).toEqual([{ kind: 'destroy-dataset', datasetId: DS_1 }]);

    const used = localContainer('old', { running: false, status: 'exited', mountSources: [`/mnt/drover/${DS_1}`] });
    const blockedByUse = plan(desired({ datasets: [tomb] }), observed({ datasets: here, containers: [used] }), ctx);
    expect(blockedByUse.changes).toEqual([{ kind: 'remove-container', name: 'drover-old', containerId: 'id-old' }]);
    expect(blockedByUse.blocked).toContainEqual({ subject: `dataset:${DS_1}`, reason: 'deleted, but used by drover-old' });

    const leased = desired({ datasets: [tomb], leases: [{ dataset_id: DS_1, node_uuid: NODE_A, expires_at: ctx.now + 1 }] });
    expect(plan(leased, observed({ datasets: here }), ctx).changes).toEqual([]);
    const expired = desired({ datasets: [tomb], leases: [{ dataset_id: DS_1, node_uuid: NODE_A, expires_at: ctx.now }] });
    expect(plan(expired, observed({ datasets: here }), ctx).changes).toEqual([{ kind: 'destroy-dataset', datasetId: DS_1 }]);
  });

  it('leaves a dataset that is not in the configuration alone', () => {
    expect(plan(desired(), observed({ datasets: [zfsDataset(DS_1)] }), ctx)).toEqual({ changes: [], blocked: [], recheckAfterMs: null });
  });

  it('never destroys, removes or starts anything on the strength of a listing that failed', () => {
    const d = desired({
      datasets: [dataset(DS_1, NODE_A, { deleted: true }), dataset(DS_2)],
      applications: [app('web', { volumes: [{ dataset_id: DS_2, mountpoint: '/data' }] })],
    });
    const noContainers = plan(d, observed({ datasets: [zfsDataset(DS_1), zfsDataset(DS_2)], containers: null }), ctx);
    expect(noContainers.changes).toEqual([]);
    expect(noContainers.blocked).toContainEqual({ subject: `dataset:${DS_1}`, reason: 'deleted, but containers are unknown this pass' });

    const stray = localContainer('gone');
    const noDatasets = plan(d, observed({ datasets: null, containers: [stray] }), ctx);
    expect(noDatasets.changes).toEqual([{ kind: 'stop-container', name: 'drover-gone', containerId: 'id-gone', reason: 'not desired on this node' }]);
    expect(noDatasets.blocked).toContainEqual({ subject: 'container:drover-web', reason: 'datasets are unknown this pass' });
  });
});

describe('plan: containers', () => {
  const web = app('web', {
    volumes: [{ dataset_id: DS_1, mountpoint: '/data' }],
    ports: [{ internal: 80, external: 8080 }],
    environment: { MODE: 'test' },
    restart_policy: { name: 'on-failure', maximum_retry_count: 2 },
  });
  const withData = desired({ datasets: [dataset(DS_1)], applications: [web] });
  const mounts: [string, string][] = [[DS_1, `/mnt/drover/${DS_1}`]];

  it('starts an application once its dataset is present, mounted and writable here', () => {
    const result = plan(withData, observed({ datasets: [zfsDataset(DS_1)] }), ctx);
    expect(result.changes).toEqual([{ kind: 'start-container', spec: specOf(web, mounts) }]);
    expect(specOf(web, mounts)).toMatchObject({
      name: 'drover-web',
      env: ['MODE=test'],
      ports: [80],
      hostIp: ADDRESS_A,
      binds: [{ source: `/mnt/drover/${DS_1}`, target: '/data' }],
      labels: { 'drover.node': NODE_A, 'drover.app': 'web', 'drover.generation': '0' },
    });
  });

  it('blocks an application whose dataset is not usable here, naming the dataset and why', () => {
    const reason = (datasets: ReturnType<typeof zfsDataset>[]) =>
      plan(withData, observed({ datasets }), ctx).blocked.find((b) => b.subject === 'container:drover-web')?.reason;
    expect(reason([])).toBe(`dataset ${DS_1} is not present on this node yet`);
    expect(reason([zfsDataset(DS_1, { mountpoint: null, mounted: false })])).toBe(`dataset ${DS_1} has no mountpoint`);
    const elsewhere = desired({ datasets: [dataset(DS_1, NODE_B)], applications: [web] });
    expect(plan(elsewhere, observed({ datasets: [zfsDataset(DS_1, { readonly: true })] }), ctx).blocked).toContainEqual({
      subject: 'container:drover-web',
      reason: `dataset ${DS_1} is primary on node ${NODE_B}`,
    });
  });

  it('starts an application in the same pass that makes its dataset writable and mounted, after that step', () => {
    const changes = (z: ReturnType<typeof zfsDataset>) => plan(withData, observed({ datasets: [z] }), ctx).changes;
    for (const z of [zfsDataset(DS_1, { readonly: true, mounted: false }), zfsDataset(DS_1, { readonly: true }), zfsDataset(DS_1, { mounted: false })]) {
      const [step, start] = changes(z);
      expect(step?.kind === 'set-dataset-readonly' || step?.kind === 'mount-dataset').toBe(true);
      expect(start).toMatchObject({ kind: 'start-container', after: [`dataset:${DS_1}`] });
    }
    // Usable already: no `after`.
    const [start] = changes(zfsDataset(DS_1, { refquota: null }));
    expect(start?.kind === 'start-container' && start.after).toBeUndefined();
  });

  it('puts link variables pointing at this node in the environment, the operator winning on a clash', () => {
    const linked = app('api', { links: [{ alias: 'db', local_port: 5432, remote_port: 15432 }], environment: { DB_HOST: 'override' } });
    expect(specOf(linked).env).toEqual([
      'DB_HOST=override',
      'DB_PORT=15432',
      `DB_PORT_5432_TCP=tcp://${ADDRESS_A}:15432`,
      `DB_PORT_5432_TCP_ADDR=${ADDRESS_A}`,
      'DB_PORT_5432_TCP_PORT=15432',
      'DB_PORT_5432_TCP_PROTO=tcp',
    ]);
  });

  it('changes the config hash with the spec, but not with the restart policy or health check', () => {
    const base = specOf(app('web')).configHash;
    expect(specOf(app('web', { image: 'other' })).configHash).not.toBe(base);
    expect(specOf(app('web', { environment: { A: '1' } })).configHash).not.toBe(base);
    expect(specOf(app('web', { restart_policy: { name: 'always' } })).configHash).toBe(base);
    expect(specOf(app('web', { health_check: { type: 'tcp', port: 80 } })).configHash).toBe(base);
  });

  it('stops, then removes a container whose spec changed', () => {
    const stale = localContainer('web', { configHash: 'old' });
    expect(plan(withData, observed({ datasets: [zfsDataset(DS_1)], containers: [stale] }), ctx).changes).toEqual([
      { kind: 'stop-container', name: 'drover-web', containerId: 'id-web', reason: 'configuration changed' },
    ]);
    const stopped = { ...stale, running: false, status: 'exited' };
    expect(plan(withData, observed({ datasets: [zfsDataset(DS_1)], containers: [stopped] }), ctx).changes).toEqual([
      { kind: 'remove-container', name: 'drover-web', containerId: 'id-web' },
    ]);
  });

  it('stops, then removes a container whose application is placed on another node or gone', () => {
    const moved = desired({ applications: [app('web', { node_uuid: NODE_B })] });
    const running = localContainer('web');
    expect(plan(moved, observed({ containers: [running] }), ctx).changes).toEqual([
      { kind: 'stop-container', name: 'drover-web', containerId: 'id-web', reason: 'not desired on this node' },
    ]);
    expect(plan(desired(), observed({ containers: [{ ...running, running: false, status: 'exited' }] }), ctx).changes).toEqual([
      { kind: 'remove-container', name: 'drover-web', containerId: 'id-web' },
    ]);
  });

  describe('restart policy', () => {
    const current = (fields: Parameters<typeof localContainer>[1]) =>
      localContainer('web', { configHash: specOf(web, mounts).configHash, mountSources: [`/mnt/drover/${DS_1}`], ...fields });
    const run = (fields: Parameters<typeof localContainer>[1], d = withData) =>
      plan(d, observed({ datasets: [zfsDataset(DS_1)], containers: [current(fields)] }), ctx);
    const crashed = { running: false, status: 'exited', exitCode: 137, startedAt: ctx.now - 5_000, finishedAt: ctx.now - 500 };

    it('restarts a crashed container after its backoff, and says how long it waits before', () => {
      const waiting = run(crashed);
      expect(waiting.changes).toEqual([]);
      expect(waiting.recheckAfterMs).toBe(500);
      expect(waiting.blocked).toEqual([{ subject: 'container:drover-web', reason: 'exited with code 137; restarting after backoff' }]);
      expect(run({ ...crashed, finishedAt: ctx.now - 1_000 }).changes).toEqual([
        { kind: 'restart-container', name: 'drover-web', containerId: 'id-web', reason: 'crashed', consecutiveRestarts: 1 },
      ]);
    });

    it('doubles the backoff with each consecutive restart, up to its cap, and starts over after a long run', () => {
      expect(run({ ...crashed, consecutiveRestarts: 1, finishedAt: ctx.now - 1_500 }).recheckAfterMs).toBe(500);
      expect(run({ ...crashed, consecutiveRestarts: 10, restartCount: 0, finishedAt: ctx.now }).recheckAfterMs).toBe(30_000);
      expect(run({ ...crashed, consecutiveRestarts: 10, startedAt: ctx.now - 120_000, finishedAt: ctx.now - 1_000 }).changes).toEqual([
        { kind: 'restart-container', name: 'drover-web', containerId: 'id-web', reason: 'crashed', consecutiveRestarts: 1 },
      ]);
    });

    it('leaves a container that exited 0 under on-failure, and stops after maximum_retry_count', () => {
      expect(run({ ...crashed, exitCode: 0 }).blocked).toEqual([
        { subject: 'container:drover-web', reason: 'exited with code 0; restart policy is on-failure' },
      ]);
      expect(run({ ...crashed, finishedAt: 0, restartCount: 2 }).blocked).toEqual([
        { subject: 'container:drover-web', reason: 'exited with code 137; restarted 2 times, the maximum' },
      ]);
    });

    it('restarts an unhealthy container at once, and never under restart policy never', () => {
      expect(run({ health: 'unhealthy' }).changes).toEqual([
        { kind: 'restart-container', name: 'drover-web', containerId: 'id-web', reason: 'unhealthy', consecutiveRestarts: 1 },
      ]);
      const never = desired({ datasets: [dataset(DS_1)], applications: [{ ...web, restart_policy: { name: 'never' } }] });
      const result = run({ health: 'unhealthy' }, never);
      expect(result.changes).toEqual([]);
      expect(result.blocked).toEqual([{ subject: 'container:drover-web', reason: 'unhealthy; restart policy is never' }]);
    });

    it('starts a container whose create succeeded but whose start did not', () => {
      expect(run({ running: false, status: 'created', exitCode: null, startedAt: null }).changes).toEqual([
        { kind: 'restart-container', name: 'drover-web', containerId: 'id-web', reason: 'never-started', consecutiveRestarts: 0 },
      ]);
    });
  });

  it('leaves the datasets and the application a migration is moving to the migration', () => {
    const d = desired({
      datasets: [dataset(DS_1, NODE_A)],
      applications: [app('web', { volumes: [{ dataset_id: DS_1, mountpoint: '/data' }] })],
      migrations: [migration({ phase: 'cutover' })],
    });
    const stopped = localContainer('web', { running: false, status: 'exited', exitCode: 137, configHash: 'x' });
    const jobs = [{ migrationId: 'cccccccc-0000-4000-8000-000000000001', stage: 'cutover' as const, outcome: null, endedAt: null, error: null }];
    const result = plan(d, { ...observed({ datasets: [zfsDataset(DS_1, { readonly: true })], containers: [stopped] }), migrationJobs: jobs }, ctx);
    expect(result.changes).toEqual([]);
    expect(result.blocked).toEqual([{ subject: 'migration:cccccccc-0000-4000-8000-000000000001', reason: 'moving to node 22222222-2222-4222-8222-222222222222: cutover' }]);
  });

  it('labels a container with the generation of its newest migration', () => {
    const d = desired({ applications: [app('web')], migrations: [migration({ phase: 'handoff', from: NODE_B, to: NODE_A, dataset_ids: [], generation: 7 })] });
    const [change] = plan(d, empty, ctx).changes;
    expect(change?.kind === 'start-container' && change.spec.labels['drover.generation']).toBe('7');
  });
});

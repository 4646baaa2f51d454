import { describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { HealthCheck } from '#common/model.ts';
import { Executor } from './execute.ts';
import { HealthMonitor } from './health/monitor.ts';
import type { ProbeState } from './health/probe-state.ts';
import type { MigrationSteps } from './migration/jobs.ts';
import { ConvergenceLoop, HEARTBEAT_MAX_MS } from './loop.ts';
import { RestartLedger } from './restart-ledger.ts';
import { FakeClock, settle } from '#common/testing/fake-clock.ts';
import { FakeContainerRuntime } from './testing/fake-container-runtime.ts';
import { FakeControlChannel } from './testing/fake-control-channel.ts';
import { ADDRESS_A, DS_1, NODE_A, NODE_B, app, dataset, desired, migration } from './testing/fixtures.ts';
import { FakeDatasetStore } from './testing/fake-dataset-store.ts';

function setup(options: { migrations?: MigrationSteps; onHealth?: (containerId: string, state: ProbeState) => void } = {}) {
  const clock = new FakeClock();
  const store = new FakeDatasetStore({ pool: 'fakepool', mountRoot: '/mnt/drover' });
  const runtime = new FakeContainerRuntime(() => clock.now());
  const channel = new FakeControlChannel();
  const ledger = new RestartLedger();
  const log = silentLogger();
  let loop: ConvergenceLoop | null = null;
  const onChange = (id: string, state: ProbeState): void => {
    options.onHealth?.(id, state);
    loop?.healthChanged(id, state.status);
  };
  const health = new HealthMonitor({ clock, runtime, log, onChange });
  const migrationSteps = options.migrations ? { migrations: options.migrations, nodeUuid: NODE_A } : {};
  const executor = new Executor({ store, runtime, ledger, clock, log, ...migrationSteps });
  const identity = { uuid: NODE_A, address: ADDRESS_A, era: 'boot-1', labels: { disk: 'ssd' }, transfer: {} };
  loop = new ConvergenceLoop({ identity, store, runtime, channel, executor, health, ledger, clock, log, pollIntervalMs: 60_000, random: () => 0.5 });
  return { clock, store, runtime, channel, loop, health };
}

const web = app('web', { volumes: [{ dataset_id: DS_1, mountpoint: '/data' }], ports: [{ internal: 80, external: 8080 }] });

/**
 * A loop on NODE_A holding DS_1 as a read-only, unmounted replica, and the views of a move of
 * `web` from NODE_B to it at `cutover` and at `handoff`.
 */
async function replicaHandedOffHere() {
  const parts = setup();
  await parts.store.createDataset(DS_1, { maximumSize: null });
  await parts.store.setReadonly(DS_1, true);
  await parts.store.unmount(DS_1);
  const view = (phase: 'cutover' | 'handoff', version: number) =>
    desired({ version, datasets: [dataset(DS_1, phase === 'handoff' ? NODE_A : NODE_B)], applications: [{ ...web, node_uuid: phase === 'handoff' ? NODE_A : NODE_B }], migrations: [migration({ from: NODE_B, to: NODE_A, phase })] });
  return { ...parts, view };
}

describe('convergence loop', () => {
  it('reports the node every pass, with what blocks it, and changes nothing before it has a desired configuration', async () => {
    const { loop, channel, runtime } = setup();
    const summary = await loop.runPass();
    expect(summary.changes).toEqual([]);
    expect(channel.reports).toEqual([
      {
        uuid: NODE_A,
        host: ADDRESS_A,
        era: 'boot-1',
        labels: { disk: 'ssd' },
        transfer: {},
        datasets: [],
        containers: [],
        problems: [{ subject: `node:${NODE_A}`, kind: 'blocked', reason: 'no desired configuration for this node yet' }],
        replication: [],
      },
    ]);
    expect(runtime.calls).toEqual([]);
  });

  it('passes again at once after it started an application handed off to it by a migration, then waits for its health', async () => {
    const { loop, store, runtime } = setup();
    // A received replica: read-only, not mounted.
    await store.createDataset(DS_1, { maximumSize: null });
    await store.setReadonly(DS_1, true);
    await store.unmount(DS_1);
    const handedOff = migration({ from: NODE_B, to: NODE_A, phase: 'handoff' });
    const checked = { ...web, health_check: HealthCheck.parse({ type: 'exec', command: ['true'], period_seconds: 1 }) };
    loop.setDesired(desired({ datasets: [dataset(DS_1, NODE_A)], applications: [checked], migrations: [handedOff] }));
    const first = await loop.runPass();
    expect(first.changes.map((c) => c.kind)).toEqual(['set-dataset-readonly', 'start-container']);
    expect(first.sleepMs).toBe(0);
    expect(runtime.byName('drover-web')?.running).toBe(true);
    // Not healthy yet (its first probe has not run): nothing to apply; the health monitor's
    // change wakes the loop, so it sleeps up to 1 s, not a busy loop nor a pass every 100 ms.
    const second = await loop.runPass();
    expect(second.changes).toEqual([]);
    expect(second.applied).toBe(0);
    expect(second.sleepMs).toBe(1_000);
  });

  it('posts release on the first passing health check of an application handed off to it, before another discovery', async () => {
    const posts: { phase: string; discoveries: number }[] = [];
    let discoveries = 0;
    let discoveriesWhenHealthy: number | null = null;
    const checked = { ...web, health_check: HealthCheck.parse({ type: 'exec', command: ['true'], period_seconds: 1 }) };
    let version = 1;
    const view = (phase: 'handoff' | 'release' | 'done') =>
      desired({ version: version++, datasets: [dataset(DS_1, NODE_A)], applications: [checked], migrations: [migration({ from: NODE_B, to: NODE_A, phase })] });
    const migrations: MigrationSteps = {
      run: () => {},
      // The control service accepts it and pushes the view at the new phase.
      post: async (_id, update) => {
        posts.push({ phase: update.phase, discoveries });
        if (update.phase === 'release' || update.phase === 'done') loop.setDesired(view(update.phase));
      },
    };
    const { loop, store, clock } = setup({
      migrations,
      onHealth: (_id, state) => {
        if (state.status === 'healthy') discoveriesWhenHealthy ??= discoveries;
      },
    });
    const listAll = store.listAll.bind(store);
    store.listAll = () => {
      discoveries += 1;
      return listAll();
    };
    await store.createDataset(DS_1, { maximumSize: null });
    await store.setReadonly(DS_1, true);
    await store.unmount(DS_1);
    loop.setDesired(view('handoff'));
    loop.start();
    try {
      for (let i = 0; i < 100 && posts.length === 0; i++) {
        await clock.advance(10);
        await settle();
      }
      expect(posts[0]?.phase).toBe('release');
      expect(discoveriesWhenHealthy).not.toBeNull();
      expect(posts[0]!.discoveries).toBe(discoveriesWhenHealthy);
    } finally {
      await loop.stop();
    }
  });

  it("makes a replica handed off to it writable and mounted as soon as the view says handoff, before another discovery", async () => {
    const { loop, store, clock, view } = await replicaHandedOffHere();
    // What each discovery finds of the replica.
    const seen: { readonly: boolean; mounted: boolean }[] = [];
    const listAll = store.listAll.bind(store);
    store.listAll = async () => {
      const all = await listAll();
      const d = all.datasets.find((x) => x.datasetId === DS_1)!;
      seen.push({ readonly: d.readonly, mounted: d.mounted });
      return all;
    };
    loop.setDesired(view('cutover', 1));
    await loop.runPass();
    expect(seen).toEqual([{ readonly: true, mounted: false }]);
    loop.start();
    try {
      loop.setDesired(view('handoff', 2));
      for (let i = 0; i < 50 && seen.length < 2; i++) {
        await clock.advance(10);
        await settle();
      }
      // The first discovery after the handoff view already finds it writable and mounted.
      expect(seen[1]).toEqual({ readonly: false, mounted: true });
    } finally {
      await loop.stop();
    }
  });

  it('takes the handoff steps at once when the handoff view arrives while a pass still discovers with the view before, and gives that pass up', async () => {
    const { loop, store, clock, view } = await replicaHandedOffHere();
    loop.setDesired(view('cutover', 1));
    await loop.runPass();
    // From now on each discovery's zfs listing waits until the test lets it go.
    const held: (() => void)[] = [];
    const listAll = store.listAll.bind(store);
    store.listAll = () => new Promise((resolve) => held.push(() => resolve(listAll())));
    const readonly: boolean[] = [];
    const setReadonly = store.setReadonly.bind(store);
    store.setReadonly = async (id, value) => {
      readonly.push(value);
      return setReadonly(id, value);
    };
    const turn = async (until: () => boolean): Promise<void> => {
      for (let i = 0; i < 50 && !until(); i++) {
        await clock.advance(10);
        await settle();
      }
    };
    loop.start();
    try {
      await turn(() => held.length > 0);
      expect(held).toHaveLength(1);
      // A new view without a new handoff here: the pass goes on (no second discovery begins).
      loop.setDesired(view('cutover', 2));
      await turn(() => held.length > 1);
      expect(held).toHaveLength(1);
      loop.setDesired(view('handoff', 3));
      await turn(() => readonly.length > 0);
      // Writable and mounted while the pass's listing still hangs.
      expect(readonly).toEqual([false]);
      const replica = (await listAll()).datasets.find((d) => d.datasetId === DS_1)!;
      expect({ readonly: replica.readonly, mounted: replica.mounted }).toEqual({ readonly: false, mounted: true });
      // The given-up pass plans and applies nothing with the older view once its listing ends.
      store.listAll = listAll;
      for (const release of held) release();
      await turn(() => false);
      expect(readonly).toEqual([false]);
    } finally {
      await loop.stop();
    }
  });

  it('does not take the handoff steps again before discovery when the pass itself planned with the handoff view', async () => {
    const { loop, store, clock } = setup();
    await store.createDataset(DS_1, { maximumSize: null });
    await store.setReadonly(DS_1, true);
    await store.unmount(DS_1);
    let writable = 0;
    const setReadonly = store.setReadonly.bind(store);
    store.setReadonly = async (id, readonly) => {
      if (!readonly) writable += 1;
      return setReadonly(id, readonly);
    };
    loop.setDesired(desired({ datasets: [dataset(DS_1, NODE_A)], applications: [web], migrations: [migration({ from: NODE_B, to: NODE_A, phase: 'handoff' })] }));
    await loop.runPass();
    expect(writable).toBe(1);
    loop.start();
    try {
      for (let i = 0; i < 20; i++) {
        await clock.advance(50);
        await settle();
      }
      expect(writable).toBe(1);
    } finally {
      await loop.stop();
    }
  });

  it('posts release on the first passing health check even while a pass is discovering', async () => {
    const posts: string[] = [];
    const checked = { ...web, health_check: HealthCheck.parse({ type: 'exec', command: ['true'], period_seconds: 1 }) };
    const view = desired({ datasets: [dataset(DS_1, NODE_A)], applications: [checked], migrations: [migration({ from: NODE_B, to: NODE_A, phase: 'handoff' })] });
    const migrations: MigrationSteps = { run: () => {}, post: async (_id, update) => void posts.push(update.phase) };
    const { loop, store, clock, health, runtime } = setup({ migrations });
    await store.createDataset(DS_1, { maximumSize: null });
    loop.setDesired(view);
    await loop.runPass(); // starts the container
    await loop.runPass(); // names it: its first passing check is the release
    expect(health.health(runtime.byName('drover-web')!.id)).toBe('starting');
    // The next pass's discovery hangs until released by the test.
    let unblock: () => void = () => {};
    const listAll = store.listAll.bind(store);
    store.listAll = () => new Promise((resolve) => (unblock = () => resolve(listAll())));
    const pass = loop.runPass();
    for (let i = 0; i < 20 && posts.length === 0; i++) {
      await clock.advance(50);
      await settle();
    }
    expect(posts).toEqual(['release']);
    unblock();
    await pass;
  });

  it('reports datasets with their mountpoint and containers with their published ports', async () => {
    const { loop, channel } = setup();
    loop.setDesired(desired({ datasets: [dataset(DS_1, NODE_A, { maximum_size: 67108864 })], applications: [web] }));
    for (let i = 0; i < 4; i++) await loop.runPass();
    const last = channel.reports.at(-1)!;
    expect(last.datasets).toEqual([
      { dataset_id: DS_1, path: `/mnt/drover/${DS_1}`, writable: true, maximum_size: 67108864, used_bytes: 24_576, snapshots: [] },
    ]);
    expect(last.containers).toEqual([
      { name: 'web', image: 'drover/busybox:latest', running: true, health: 'unknown', restart_count: 0, published: [{ internal: 80, host: ADDRESS_A, host_port: 32768 }], generation: 0 },
    ]);
    expect(last.problems).toEqual([]);
  });

  it('skips the report, rather than report no datasets, while zfs cannot be listed', async () => {
    const { loop, channel, store } = setup();
    store.listDatasets = () => Promise.reject(new Error('zfs is down'));
    const summary = await loop.runPass();
    expect(summary.reported).toBe(false);
    expect(channel.reports).toEqual([]);
  });

  it('wakes on a new desired version from the control service and converges', async () => {
    const { loop, channel, runtime, clock } = setup();
    loop.start();
    try {
      await settle();
      channel.publish(desired({ version: 2, datasets: [dataset(DS_1)], applications: [web] }));
      for (let i = 0; i < 50 && !runtime.byName('drover-web')?.running; i++) {
        await clock.advance(100);
        await settle();
      }
      expect(runtime.byName('drover-web')?.running).toBe(true);
      expect(loop.currentDesired?.version).toBe(2);
    } finally {
      await loop.stop();
    }
  });

  it('keeps going when a pass throws, and when the control service cannot be reached', async () => {
    const { loop, channel, store, health } = setup();
    channel.reportError = new Error('connection refused');
    loop.setDesired(desired({ datasets: [dataset(DS_1)] }));
    const original = health.sync.bind(health);
    health.sync = () => {
      throw new Error('a bug');
    };
    const broken = await loop.runPass();
    expect(broken).toMatchObject({ reported: false, applied: 0, sleepMs: 100 });
    health.sync = original;
    const first = await loop.runPass();
    expect(first.applied).toBe(1);
    expect(await store.getDataset(DS_1)).not.toBeNull();
  });

  // A stop waits out the container's grace (10 s by default): the node must not go silent past its lease meanwhile.
  it('sends its report again every poll interval while a pass\'s change runs long, and stops once the pass counts as hung', async () => {
    const { loop, channel, runtime, clock } = setup();
    loop.setDesired(desired({ datasets: [dataset(DS_1)], applications: [web] }));
    for (let i = 0; i < 5 && !runtime.byName('drover-web')?.running; i++) await loop.runPass();
    expect(runtime.byName('drover-web')?.running).toBe(true);
    loop.setDesired(desired({ version: 2, datasets: [dataset(DS_1)] }));
    let release = (): void => {};
    const stopped = new Promise<void>((r) => (release = r));
    const stop = runtime.stop.bind(runtime);
    runtime.stop = async (id: string) => {
      await stopped;
      await stop(id);
    };
    const before = channel.reports.length;
    const pass = loop.runPass();
    await settle();
    expect(channel.reports.length).toBe(before + 1);
    await clock.advance(60_000); // the poll interval of setup()
    await settle();
    expect(channel.reports.length).toBe(before + 2);
    expect(channel.reports.at(-1)).toEqual(channel.reports[before]);
    await clock.advance(HEARTBEAT_MAX_MS);
    await settle();
    expect(channel.reports.length).toBe(before + 2);
    release();
    expect((await pass).changes.map((c) => c.kind)).toEqual(['stop-container']);
    await clock.advance(120_000);
    await settle();
    expect(channel.reports.length).toBe(before + 2);
  });

  it('sends no report again when a pass\'s changes end within the poll interval', async () => {
    const { loop, channel, clock } = setup();
    loop.setDesired(desired({ datasets: [dataset(DS_1)], applications: [web] }));
    await loop.runPass();
    const after = channel.reports.length;
    await clock.advance(120_000);
    await settle();
    expect(channel.reports.length).toBe(after);
  });
});

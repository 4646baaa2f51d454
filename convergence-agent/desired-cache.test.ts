import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { FakeClock, settle } from '#common/testing/fake-clock.ts';
import { DesiredCache } from './desired-cache.ts';
import { Executor } from './execute.ts';
import { HealthMonitor } from './health/monitor.ts';
import { ConvergenceLoop } from './loop.ts';
import { RestartLedger } from './restart-ledger.ts';
import { FakeContainerRuntime } from './testing/fake-container-runtime.ts';
import { FakeControlChannel } from './testing/fake-control-channel.ts';
import { FakeDatasetStore } from './testing/fake-dataset-store.ts';
import { ADDRESS_A, DS_1, NODE_A, NODE_B, app, dataset, desired } from './testing/fixtures.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function cacheIn(node = NODE_A): Promise<DesiredCache> {
  const dir = await mkdtemp(join(tmpdir(), 'drover-desired-'));
  dirs.push(dir);
  return new DesiredCache(join(dir, 'desired.json'), node, silentLogger(), () => 1_000);
}

const web = app('web', { volumes: [{ dataset_id: DS_1, mountpoint: '/data' }], restart_policy: { name: 'always' } });

describe('the saved desired view', () => {
  it('is written 0600 in one piece and read back as it was received', async () => {
    const cache = await cacheIn();
    const view = desired({ version: 7, datasets: [dataset(DS_1)], applications: [web] });
    cache.save(view);
    await cache.settled();
    expect((await stat(cache.path)).mode & 0o777).toBe(0o600);
    expect(await cache.load()).toEqual({ desired: view, savedAt: 1_000 });
  });

  it('is ignored when damaged, invalid or of another node, leaving the agent without a view', async () => {
    const cache = await cacheIn();
    await writeFile(cache.path, '{"format_version": 1, "node_uuid": "x", "saved_at": 1, "desi');
    expect(await cache.load()).toBeNull();
    await writeFile(cache.path, JSON.stringify({ format_version: 1, node_uuid: NODE_A, saved_at: 1, desired: { version: 'new' } }));
    expect(await cache.load()).toBeNull();
    const other = new DesiredCache(cache.path, NODE_B, silentLogger());
    cache.save(desired({ version: 3 }));
    await cache.settled();
    expect(await other.load()).toBeNull();
  });

  it('saves the newest of views received in a burst, not each', async () => {
    const cache = await cacheIn();
    for (let v = 1; v <= 5; v++) cache.save(desired({ version: v }));
    await cache.settled();
    expect(JSON.parse(await readFile(cache.path, 'utf8')).desired.version).toBe(5);
  });
});

describe('an agent started from its saved view', () => {
  function node(cache: DesiredCache) {
    const clock = new FakeClock();
    const store = new FakeDatasetStore({ pool: 'fakepool', mountRoot: '/mnt/drover' });
    const runtime = new FakeContainerRuntime(() => clock.now());
    const channel = new FakeControlChannel();
    const ledger = new RestartLedger();
    const log = silentLogger();
    const health = new HealthMonitor({ clock, runtime, log });
    const executor = new Executor({ store, runtime, ledger, clock, log });
    const identity = { uuid: NODE_A, address: ADDRESS_A, era: 'boot-1', labels: {}, transfer: {} };
    const make = () => new ConvergenceLoop({ identity, store, runtime, channel, executor, health, ledger, clock, log, pollIntervalMs: 60_000, random: () => 0.5, desiredCache: cache });
    return { clock, store, runtime, channel, make };
  }

  it('keeps its node as the view says while no control service answers — a crashed application is started again — and takes the first answer over it', async () => {
    const cache = await cacheIn();
    const n = node(cache);
    // The first run receives a view and converges; the view is saved.
    const first = n.make();
    first.start();
    n.channel.publish(desired({ version: 5, datasets: [dataset(DS_1)], applications: [web] }));
    for (let i = 0; i < 50 && !n.runtime.byName('drover-web')?.running; i++) {
      await n.clock.advance(100);
      await settle();
    }
    await first.stop();
    await cache.settled();
    expect(n.runtime.byName('drover-web')?.running).toBe(true);

    // Restarted with no control service: reports fail, no view comes; the application crashes.
    n.channel.reportError = new Error('connect ECONNREFUSED');
    n.runtime.crash('drover-web');
    const second = n.make();
    const saved = await cache.load();
    expect(saved?.desired.version).toBe(5);
    second.restoreDesired(saved!.desired);
    for (let i = 0; i < 10 && !n.runtime.byName('drover-web')?.running; i++) {
      await second.runPass();
      await n.clock.advance(1_000);
    }
    expect(n.runtime.byName('drover-web')?.running).toBe(true);
    expect(await n.store.getDataset(DS_1)).not.toBeNull();

    // A control service answers again, with the same version number: the answer still replaces the saved view.
    n.channel.reportError = null;
    const fresh = desired({ version: 5, datasets: [dataset(DS_1)], applications: [] });
    n.channel.publish(fresh);
    second.start();
    try {
      for (let i = 0; i < 50 && second.currentDesired?.applications.length !== 0; i++) {
        await n.clock.advance(100);
        await settle();
      }
      expect(second.currentDesired).toEqual(fresh);
    } finally {
      await second.stop();
    }
  });
});

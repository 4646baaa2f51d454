import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { sleep } from '#common/sleep.ts';
import { VolumeDriver } from './driver.ts';
import { FakeControl } from './fake-control.ts';
import { MountStore } from './mount-store.ts';
import { mountCount } from './mounts.ts';

const ME = '11111111-1111-4111-8111-111111111111';
const OTHER = '22222222-2222-4222-8222-222222222222';
const nodes = [
  { uuid: ME, host: '127.0.0.11' },
  { uuid: OTHER, host: '127.0.0.12' },
];
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function setup(options: { moves?: 'instant' | 'manual'; mountTimeoutMs?: number; stateDir?: string; control?: FakeControl } = {}) {
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'drover-driver-')));
  dirs.push(stateDir);
  const control = options.control ?? new FakeControl({ nodes, moves: options.moves ?? 'instant' });
  const store = await MountStore.open(stateDir);
  const driver = new VolumeDriver({ control, store, nodeUuid: ME, log: silentLogger(), mountTimeoutMs: options.mountTimeoutMs ?? 2_000, pollMs: 20 });
  return { driver, control, store, stateDir };
}

function errorOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'no error',
    (e: Error) => e.message,
  );
}

describe('VolumeDriver', () => {
  it('creates one dataset for a name however often Create comes, on this node or another', async () => {
    const { driver, control } = await setup();
    await driver.create('v1', null);
    await driver.create('v1', { size: '1G' });
    const other = new VolumeDriver({ control, store: (await setup()).store, nodeUuid: OTHER, log: silentLogger() });
    await other.create('v1', null);
    expect(control.datasets).toHaveLength(1);
    expect(control.datasets[0]).toMatchObject({ primary: ME, maximum_size: null, metadata: { name: 'v1' } });
  });

  it('sets the maximum size and the node from the options, and refuses unknown options by name', async () => {
    const { driver, control } = await setup();
    await driver.create('v1', { size: '1G', node: '127.0.0.12' });
    expect(control.datasets[0]).toMatchObject({ primary: OTHER, maximum_size: 1024 ** 3 });
    expect(await errorOf(driver.create('v2', { sise: '1G' }))).toBe('unknown option "sise" (drover volumes take: size, node)');
    expect(await errorOf(driver.create('v2', { node: '127.0.0.99' }))).toBe('option node="127.0.0.99" names no known node (known: 127.0.0.11, 127.0.0.12)');
  });

  it('gets a volume with an RFC 3339 CreatedAt, its mountpoint here and where it is', async () => {
    const { driver, control } = await setup();
    await driver.create('v1', null);
    const info = await driver.get('v1');
    const id = control.datasets[0]!.dataset_id;
    expect(info).toMatchObject({ Name: 'v1', Mountpoint: `/fake/${ME}/${id}`, Status: { dataset_id: id, primary: ME, local: true, mounts: 0 } });
    expect(new Date(info.CreatedAt!).toISOString()).toBe(info.CreatedAt);
    expect(await errorOf(driver.get('nope'))).toBe('no drover volume named "nope"');
  });

  it('finds a volume that another node created a moment ago, though its cached view is older', async () => {
    const { driver, control } = await setup();
    await driver.list();
    await control.createDataset({ name: 'late', primary: OTHER, maximumSize: null });
    expect((await driver.get('late')).Status).toMatchObject({ primary: OTHER, local: false });
  });

  it('lists live volumes only, and says which are here', async () => {
    const { driver } = await setup();
    await driver.create('here', null);
    await driver.create('there', { node: '127.0.0.12' });
    await driver.create('gone', null);
    await driver.remove('gone');
    driver.catalog.invalidate();
    const list = await driver.list();
    expect(list.map((v) => [v.Name, v.Status?.local, v.Status?.node])).toEqual([
      ['here', true, '127.0.0.11'],
      ['there', false, '127.0.0.12'],
    ]);
  });

  it('takes the lease on the first Mount and releases it on the last Unmount, counting repeats of one ID', async () => {
    const { driver, control, store } = await setup();
    await driver.create('v1', null);
    const path = await driver.mount('v1', 'A');
    expect(control.leases).toEqual([{ dataset_id: control.datasets[0]!.dataset_id, node_uuid: ME, expires: null }]);
    expect(await driver.mount('v1', 'A')).toBe(path); // docker cp while the container runs
    await driver.unmount('v1', 'A');
    await driver.settle();
    expect(control.leases).toHaveLength(1);
    await driver.unmount('v1', 'A');
    await driver.settle();
    expect(control.leases).toEqual([]);
    expect(mountCount(store.current, 'v1')).toBe(0);
    expect(store.current.pending_releases).toEqual([]);
  });

  it('answers a Mount of a volume already mounted here without asking the control service', async () => {
    const { driver, control } = await setup();
    await driver.create('v1', null);
    await driver.mount('v1', 'A');
    await driver.get('v1');
    const before = { ...control.calls };
    control.unreachable = true;
    await driver.mount('v1', 'B');
    await driver.unmount('v1', 'B');
    expect(await driver.path('v1')).toMatch(/^\/fake\//);
    expect((await driver.get('v1')).Name).toBe('v1');
    expect(control.calls).toEqual(before);
  });

  it('mounts a volume already here with one round trip: the lease and a fresh view at once', async () => {
    const { driver, control } = await setup();
    await driver.create('v1', null);
    await driver.get('v1');
    const before = { ...control.calls };
    await driver.mount('v1', 'A');
    const made = Object.fromEntries(Object.entries(control.calls).map(([k, n]) => [k, n - (before[k] ?? 0)]).filter(([, n]) => n !== 0));
    expect(made).toEqual({ acquireLease: 1, listDatasets: 1, datasetStates: 1 });
  });

  it('keeps the lease when a Mount follows the last Unmount at once', async () => {
    const { driver, control } = await setup();
    await driver.create('v1', null);
    await driver.mount('v1', 'A');
    await driver.unmount('v1', 'A');
    await driver.mount('v1', 'B');
    await driver.settle();
    expect(control.leases.map((l) => l.node_uuid)).toEqual([ME]);
  });

  it('writes the release with the last Unmount, so a plugin killed before releasing releases at start', async () => {
    const first = await setup();
    await first.driver.create('v1', null);
    await first.driver.mount('v1', 'A');
    first.control.unreachable = true; // the release cannot happen: as if killed right after answering
    await first.driver.unmount('v1', 'A');
    await first.driver.settle();
    first.control.unreachable = false;
    const restarted = await setup({ stateDir: first.stateDir, control: first.control });
    expect(first.control.leases).toHaveLength(1);
    await restarted.driver.reconcile();
    expect(first.control.leases).toEqual([]);
  });

  it('treats an Unmount it never mounted as a success, and a duplicate Unmount as a no-op', async () => {
    const { driver, control } = await setup();
    await driver.create('v1', null);
    await driver.unmount('v1', 'never');
    await driver.unmount('unknown-volume', 'X');
    await driver.mount('v1', 'A');
    await driver.mount('v1', 'B');
    await driver.unmount('v1', 'A');
    await driver.unmount('v1', 'A');
    await driver.settle();
    expect(control.leases).toHaveLength(1);
  });

  it('keeps the counts across a restart, and the Unmount after it releases the lease', async () => {
    const first = await setup();
    await first.driver.create('v1', null);
    await first.driver.mount('v1', 'A');
    const restarted = await setup({ stateDir: first.stateDir, control: first.control });
    await restarted.driver.reconcile();
    expect(first.control.leases).toHaveLength(1);
    await restarted.driver.unmount('v1', 'A');
    await restarted.driver.settle();
    expect(first.control.leases).toEqual([]);
  });

  it('retries a lease release that failed while the control service was down', async () => {
    const { driver, control, store } = await setup();
    await driver.create('v1', null);
    await driver.mount('v1', 'A');
    control.unreachable = true;
    await driver.unmount('v1', 'A');
    await driver.settle();
    expect(store.current.pending_releases).toEqual([{ dataset_id: control.datasets[0]!.dataset_id, name: 'v1' }]);
    control.unreachable = false;
    await driver.reconcile();
    expect(control.leases).toEqual([]);
    expect(store.current.pending_releases).toEqual([]);
  });

  it('refuses to remove a volume mounted here or leased by another node, and says by whom', async () => {
    const { driver, control } = await setup();
    await driver.create('v1', null);
    await driver.mount('v1', 'A');
    expect(await errorOf(driver.remove('v1'))).toBe('volume "v1" is in use on this node (1 mount by containers)');
    await driver.unmount('v1', 'A');
    await driver.settle();
    await control.acquireLease(control.datasets[0]!.dataset_id, OTHER);
    expect(await errorOf(driver.remove('v1'))).toBe(
      'volume "v1" is in use on node 127.0.0.12 (22222222) (it holds the volume\'s lease); stop the containers using it there first',
    );
    expect(control.datasets[0]!.deleted).toBe(false);
  });

  it('removes by soft delete, and a second Remove succeeds too', async () => {
    const { driver, control } = await setup();
    await driver.create('v1', null);
    await driver.remove('v1');
    await driver.remove('v1');
    expect(control.datasets[0]!.deleted).toBe(true);
    expect(await errorOf(driver.get('v1'))).toBe('no drover volume named "v1"');
  });

  it('moves a volume that lives on another node here on Mount', async () => {
    const { driver, control } = await setup();
    await driver.create('v1', { node: '127.0.0.12' });
    const path = await driver.mount('v1', 'A');
    expect(path).toBe(`/fake/${ME}/${control.datasets[0]!.dataset_id}`);
    expect(control.datasets[0]!.primary).toBe(ME);
  });

  it('waits for a move under way and mounts when it is done', async () => {
    const { driver, control } = await setup({ moves: 'manual' });
    await driver.create('v1', { node: '127.0.0.12' });
    const mounting = driver.mount('v1', 'A');
    await sleep(100);
    control.finish(control.migrationOf(control.datasets[0]!.dataset_id)!.id);
    expect(await mounting).toMatch(new RegExp(`^/fake/${ME}/`));
  });

  it('answers a Mount that ran out of time with where the volume is and how far the move got', async () => {
    const { driver, control } = await setup({ moves: 'manual', mountTimeoutMs: 300 });
    await driver.create('v1', { node: '127.0.0.12' });
    const mounting = errorOf(driver.mount('v1', 'A'));
    await sleep(100);
    const migration = control.migrationOf(control.datasets[0]!.dataset_id)!;
    control.advance(migration.id, { phase: 'pre-copy', round: 2, bytes_sent: 12 * 1024 ** 2, bytes_total: 48 * 1024 ** 2 });
    expect(await mounting).toBe(
      `volume "v1" is still moving to this node from node 127.0.0.12 (22222222): migration ${migration.id.slice(0, 8)} in pre-copy, round 2, 12M of 48M sent. ` +
        'Not ready after 0 s; run the container again to keep waiting (the move goes on without it).',
    );
    expect(control.leases).toEqual([]);
    // Docker never Unmounts a failed Mount; asking again joins the same move.
    const again = driver.mount('v1', 'A');
    await sleep(50);
    control.finish(migration.id);
    await again;
    expect(control.migrations).toHaveLength(1);
  });

  it('fails a Mount at once when the move fails, or when another node holds the lease', async () => {
    const { driver, control } = await setup({ moves: 'manual', mountTimeoutMs: 5_000 });
    await driver.create('v1', { node: '127.0.0.12' });
    const mounting = errorOf(driver.mount('v1', 'A'));
    await sleep(100);
    control.fail(control.migrationOf(control.datasets[0]!.dataset_id)!.id, 'no space left on 127.0.0.11');
    expect(await mounting).toBe('moving volume "v1" to this node failed: no space left on 127.0.0.11; it stays on node 127.0.0.12 (22222222)');

    await driver.create('v2', { node: '127.0.0.12' });
    await control.acquireLease(control.datasets[1]!.dataset_id, OTHER);
    expect(await errorOf(driver.mount('v2', 'A'))).toBe(
      'volume "v2" is in use on node 127.0.0.12 (22222222) (it holds the volume\'s lease); stop the containers using it there first',
    );
  });

  it('keeps waiting through a control service outage during a move, and says so if time runs out', async () => {
    const { driver, control } = await setup({ moves: 'manual', mountTimeoutMs: 400 });
    await driver.create('v1', { node: '127.0.0.12' });
    const mounting = driver.mount('v1', 'A');
    await sleep(60);
    control.unreachable = true;
    await sleep(100);
    control.unreachable = false;
    control.finish(control.migrationOf(control.datasets[0]!.dataset_id)!.id);
    expect(await mounting).toMatch(/^\/fake\//);

    await driver.create('v2', { node: '127.0.0.12' });
    const late = errorOf(driver.mount('v2', 'A'));
    await sleep(60);
    control.unreachable = true;
    expect(await late).toMatch(/^volume "v2" is still moving to this node from node 22222222-2222-4222-8222-222222222222: .* Last error: control service did not answer \(fake: unreachable\)$/);
  });

  it('ends a waiting Mount with an Err when the plugin stops', async () => {
    const { driver } = await setup({ moves: 'manual', mountTimeoutMs: 60_000 });
    await driver.create('v1', { node: '127.0.0.12' });
    const mounting = errorOf(driver.mount('v1', 'A'));
    await sleep(50);
    driver.stop();
    expect(await mounting).toBe('the drover volume plugin is stopping; volume "v1" was not mounted');
  });

  it('says where a volume is when Path is asked on the wrong node', async () => {
    const { driver } = await setup();
    await driver.create('v1', { node: '127.0.0.12' });
    expect(await errorOf(driver.path('v1'))).toBe('volume "v1" is not on this node: it is on node 127.0.0.12 (22222222)');
  });
});

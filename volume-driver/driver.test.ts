import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { cleanup, errorOf, ME, OTHER, setup } from './testing/driver-fixture.ts';
import { VolumeDriver } from './driver.ts';
import { LEASE_TTL_SECONDS, LINGER_MS } from './lease-keeper.ts';
import { mountCount } from './mounts.ts';

afterEach(cleanup);

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
    expect(control.leases).toEqual([{ dataset_id: control.datasets[0]!.dataset_id, node_uuid: ME, expires: LEASE_TTL_SECONDS }]);
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

  it('keeps the lease for a Mount that follows the last Unmount at once, with no round trip (docker run mounts twice)', async () => {
    const { driver, control, store } = await setup();
    await driver.create('v1', null);
    await driver.mount('v1', 'B');
    await driver.unmount('v1', 'B');
    const before = { ...control.calls };
    await driver.mount('v1', 'A');
    expect(control.calls).toEqual(before);
    expect(store.current.pending_releases).toEqual([]);
    await driver.settle();
    expect(control.leases.map((l) => l.node_uuid)).toEqual([ME]);
  });

  it('releases the lease a moment after the last Unmount', async () => {
    const clock = new FakeClock();
    const { driver, control } = await setup({ clock });
    await driver.create('v1', null);
    await driver.mount('v1', 'A');
    await driver.unmount('v1', 'A');
    await clock.advance(LINGER_MS - 1);
    expect(control.leases).toHaveLength(1);
    await clock.advance(1);
    // The release itself writes the mount state to disk: real I/O, so poll for it.
    await expect.poll(() => control.leases).toEqual([]);
  });

  it('waits briefly for another node to let go of the lease before calling the volume in use', async () => {
    const clock = new FakeClock();
    const { driver, control } = await setup({ clock });
    await driver.create('v1', null);
    await control.acquireLease(control.datasets[0]!.dataset_id, OTHER);
    const mounting = driver.mount('v1', 'A');
    // Refused once, the Mount waits to ask again; the lease goes within the fixture's othersWaitMs (300).
    await expect.poll(() => clock.pending).toBe(1);
    await clock.advance(100);
    await control.releaseLease(control.datasets[0]!.dataset_id);
    await clock.advance(150);
    expect(await mounting).toMatch(/^\/fake\//);
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

});

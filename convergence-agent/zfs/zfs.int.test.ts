import { describe, expect, it, afterAll, beforeAll } from 'vitest';
import { datasetStoreContract } from '../testing/dataset-store.contract.ts';
import { createTempPool, zfsAvailable, type TempPool } from '../testing/temp-pool.ts';
import { ZfsStore } from './zfs.ts';
import { RecordingRunner, execaRunner } from './command.ts';

// Needs the zfs-fuse daemon. Under CI it must be there; locally the suite skips, saying why.
const available = await zfsAvailable();
const ci = process.env.CI === 'true';

if (!available && ci) {
  describe('zfs adapter', () => {
    it('needs the zfs-fuse daemon (zpool list failed) and CI=true requires it', () => {
      expect.fail('zfs-fuse is not running: start it with `zfs-fuse` before the integration tests');
    });
  });
}

describe.skipIf(!available)(available ? 'zfs adapter on zfs-fuse' : 'zfs adapter (skipped: zfs-fuse not running)', () => {
  // One pool for the whole suite: creating and destroying a pool per test is slow on
  // zfs-fuse and, on a busy machine, can wedge its unmounts. Each test starts empty.
  let shared: TempPool | null = null;
  afterAll(async () => {
    await shared?.destroy();
  });
  datasetStoreContract('zfs-fuse', async () => {
    shared ??= await createTempPool({ sizeMiB: 256 });
    const store = new ZfsStore({ pool: shared.name, mountRoot: shared.mountRoot });
    return {
      store,
      cleanup: async () => {
        for (const dataset of await store.listDatasets()) await store.destroyDataset(dataset.datasetId);
      },
    };
  });

  describe('beyond the contract', () => {
    let pool: TempPool;
    beforeAll(async () => {
      pool = await createTempPool({ sizeMiB: 128 });
    });
    afterAll(async () => {
      await pool.destroy();
    });

    it('runs no command at all for an invalid name', async () => {
      const runner = new RecordingRunner(execaRunner);
      const store = new ZfsStore({ pool: pool.name, runner, mountRoot: pool.mountRoot });
      await expect(store.createSnapshot('2b1e7a1c-0000-4000-8000-000000000000', 'x;rm -rf /')).rejects.toMatchObject({
        code: 'DROVER_ZFS_INVALID_NAME',
      });
      await expect(store.createDataset('$(reboot)', { maximumSize: null })).rejects.toMatchObject({ code: 'DROVER_ZFS_INVALID_NAME' });
      expect(runner.calls).toEqual([]);
    });

    it('rejoins a failed-over copy that holds nothing after the promoted snapshot, and refuses one written after it, deciding with zfs', async () => {
      const { writeFile } = await import('node:fs/promises');
      const { join } = await import('node:path');
      const store = new ZfsStore({ pool: pool.name, mountRoot: pool.mountRoot });
      const clean = '2b1e7a1c-0000-4000-8000-00000000c1ea';
      const dirty = '2b1e7a1c-0000-4000-8000-00000000d127';
      for (const id of [clean, dirty]) {
        const info = await store.createDataset(id, { maximumSize: null });
        await writeFile(join(info.mountpoint!, 'data'), 'before the failover\n');
        await store.createSnapshot(id, 'drover-20261206T120000000Z-0001');
        // A later snapshot with nothing in it: dropped by the rollback when nothing else changed.
        await store.createSnapshot(id, 'drover-20261206T120002000Z-0002');
      }
      await writeFile(join((await store.getDataset(dirty))!.mountpoint!, 'data'), 'written after the promoted snapshot\n');

      expect(await store.rejoin(clean, 7, 'drover-20261206T120000000Z-0001')).toBe(true);
      expect((await store.listSnapshots(clean)).map((s) => s.snapshot)).toEqual(['drover-20261206T120000000Z-0001']);
      expect(await store.getDataset(clean)).toMatchObject({ readonly: true });
      expect(await store.listDiverged()).toContainEqual({ rejoined: true, datasetId: clean, name: `${pool.name}/drover/${clean}`, generation: 7, usedBytes: 0 });

      expect(await store.rejoin(dirty, 7, 'drover-20261206T120000000Z-0001')).toBe(false);
      // Nothing changed: both snapshots still there, the check snapshot gone, the data as written.
      expect((await store.listSnapshots(dirty)).map((s) => s.snapshot)).toEqual(['drover-20261206T120000000Z-0001', 'drover-20261206T120002000Z-0002']);
      expect(await store.rejoin(dirty, 7, 'drover-20261206T115959000Z-0009')).toBe(false);
      for (const id of [clean, dirty]) await store.destroyDataset(id);
    });

    it('reports a pool that does not exist instead of an empty list', async () => {
      const store = new ZfsStore({ pool: 'drover-zt-missing' });
      await expect(store.listDatasets()).rejects.toMatchObject({ code: 'DROVER_ZFS_POOL_NOT_FOUND' });
    });
  });
});

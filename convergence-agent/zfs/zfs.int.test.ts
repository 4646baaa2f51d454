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

    it('reports a pool that does not exist instead of an empty list', async () => {
      const store = new ZfsStore({ pool: 'drover-zt-missing' });
      await expect(store.listDatasets()).rejects.toMatchObject({ code: 'DROVER_ZFS_POOL_NOT_FOUND' });
    });
  });
});

/**
 * The contract every DatasetStore + SnapshotStore obeys (Flocker's make_iblockdeviceapi_tests).
 * Runs against the in-memory fake (dataset-store.test.ts) and real zfs-fuse
 * (zfs.int.test.ts), so the fake the planner's tests use cannot drift from zfs.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { DatasetStore, SnapshotStore } from '../zfs/types.ts';

export type ContractStore = DatasetStore & SnapshotStore;

export interface ContractSubject {
  store: ContractStore;
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code ?? 'NO_CODE';
  }
  return 'RESOLVED';
}

export function datasetStoreContract(label: string, factory: () => Promise<ContractSubject>): void {
  describe(`DatasetStore contract: ${label}`, () => {
    let subject: ContractSubject;
    let store: ContractStore;
    beforeEach(async () => {
      subject = await factory();
      store = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    it('lists no datasets before any is created', async () => {
      expect(await store.listDatasets()).toEqual([]);
    });

    it('creates a dataset with its size limit and lists it', async () => {
      const id = randomUUID();
      const created = await store.createDataset(id, { maximumSize: 64 * MiB });
      expect(created).toMatchObject({ datasetId: id, name: `${store.pool}/drover/${id}`, refquota: 64 * MiB, readonly: false });
      expect((await store.listDatasets()).map((d) => d.datasetId)).toEqual([id]);
      expect(await store.getDataset(id)).toMatchObject({ datasetId: id, refquota: 64 * MiB });
    });

    it('creates idempotently and applies a changed size limit', async () => {
      const id = randomUUID();
      await store.createDataset(id, { maximumSize: 64 * MiB });
      const again = await store.createDataset(id, { maximumSize: 32 * MiB });
      expect(again.refquota).toBe(32 * MiB);
      expect(await store.listDatasets()).toHaveLength(1);
    });

    it('answers null for a dataset that does not exist', async () => {
      expect(await store.getDataset(randomUUID())).toBeNull();
    });

    it('destroys a dataset with its snapshots, and destroying it again is a no-op', async () => {
      const id = randomUUID();
      await store.createDataset(id, { maximumSize: null });
      await store.createSnapshot(id, 'drover-a');
      await store.destroyDataset(id);
      expect(await store.getDataset(id)).toBeNull();
      await store.destroyDataset(id);
    });

    it('reports read-only as set, whether mounted or not', async () => {
      const id = randomUUID();
      await store.createDataset(id, { maximumSize: null });
      await store.setReadonly(id, true);
      expect((await store.getDataset(id))?.readonly).toBe(true);
      await store.unmount(id);
      expect((await store.getDataset(id))?.readonly).toBe(true);
      await store.mount(id);
      expect((await store.getDataset(id))?.readonly).toBe(true);
      await store.setReadonly(id, false);
      expect((await store.getDataset(id))?.readonly).toBe(false);
    });

    it('removes the size limit when the maximum size is null', async () => {
      const id = randomUUID();
      await store.createDataset(id, { maximumSize: 64 * MiB });
      await store.setMaximumSize(id, null);
      expect((await store.getDataset(id))?.refquota).toBeNull();
    });

    it('mounts and unmounts idempotently', async () => {
      const id = randomUUID();
      await store.createDataset(id, { maximumSize: null });
      await store.mount(id);
      await store.mount(id);
      expect((await store.getDataset(id))?.mounted).toBe(true);
      await store.unmount(id);
      await store.unmount(id);
      expect((await store.getDataset(id))?.mounted).toBe(false);
    });

    it('lists snapshots oldest first with decimal guids, and taking one twice keeps it', async () => {
      const id = randomUUID();
      await store.createDataset(id, { maximumSize: null });
      const a = await store.createSnapshot(id, 'drover-a');
      const b = await store.createSnapshot(id, 'drover-b');
      expect((await store.createSnapshot(id, 'drover-a')).guid).toBe(a.guid);
      const listed = await store.listSnapshots(id);
      expect(listed.map((s) => s.snapshot)).toEqual(['drover-a', 'drover-b']);
      expect(listed[0]).toMatchObject({ name: `${store.pool}/drover/${id}@drover-a`, userrefs: 0 });
      for (const s of listed) expect(s.guid).toMatch(/^[0-9]+$/);
      expect(a.guid).not.toBe(b.guid);
      expect(a.createtxg).toBeLessThan(b.createtxg);
    });

    it('lists every dataset with its snapshots at once, as listDatasets and listSnapshots do one by one', async () => {
      const [one, two] = [randomUUID(), randomUUID()];
      await store.createDataset(one, { maximumSize: 64 * MiB });
      await store.createDataset(two, { maximumSize: null });
      await store.createSnapshot(one, 'drover-a');
      await store.createSnapshot(one, 'drover-b');
      await store.hold(one, 'drover-b', 'drover-base');
      const all = await store.listAll();
      expect(all.datasets).toEqual(await store.listDatasets());
      expect(all.snapshots[one]).toEqual(await store.listSnapshots(one));
      expect(all.snapshots[two]).toEqual([]);
      expect(all.snapshots[one]!.map((s) => [s.snapshot, s.userrefs])).toEqual([['drover-a', 0], ['drover-b', 1]]);
      await store.release(one, 'drover-b', 'drover-base');
    });

    it('holds and releases idempotently, and a held snapshot cannot be destroyed', async () => {
      const id = randomUUID();
      await store.createDataset(id, { maximumSize: null });
      await store.createSnapshot(id, 'drover-a');
      await store.hold(id, 'drover-a', 'drover-step');
      await store.hold(id, 'drover-a', 'drover-step');
      await store.hold(id, 'drover-a', 'drover-base');
      expect((await store.listSnapshots(id))[0]?.userrefs).toBe(2);
      expect(await codeOf(store.destroySnapshot(id, 'drover-a'))).toBe('DROVER_ZFS_BUSY');
      await store.release(id, 'drover-a', 'drover-step');
      await store.release(id, 'drover-a', 'drover-step');
      await store.release(id, 'drover-a', 'drover-base');
      await store.destroySnapshot(id, 'drover-a');
      await store.destroySnapshot(id, 'drover-a');
      expect(await store.listSnapshots(id)).toEqual([]);
    });

    it('rolls back to a snapshot, destroying the later ones', async () => {
      const id = randomUUID();
      await store.createDataset(id, { maximumSize: null });
      await store.createSnapshot(id, 'drover-a');
      await store.createSnapshot(id, 'drover-b');
      await store.createSnapshot(id, 'drover-c');
      await store.rollback(id, 'drover-a');
      expect((await store.listSnapshots(id)).map((s) => s.snapshot)).toEqual(['drover-a']);
    });

    it('rejects names outside drover\'s namespace before doing anything', async () => {
      const id = randomUUID();
      await store.createDataset(id, { maximumSize: null });
      const bad = [
        store.getDataset('not-a-uuid'),
        store.createDataset('../etc', { maximumSize: null }),
        store.destroyDataset(`${id}@x`),
        store.setReadonly(id.toUpperCase(), true),
        store.mount('x y'),
        store.listSnapshots(''),
        store.createSnapshot(id, 'bad name'),
        store.createSnapshot(id, 'manual'),
        store.createSnapshot(id, 'drover-a+b'),
        store.hold(id, 'drover-a', 'user-tag'),
        store.release(id, 'drover-a', 'drover tag'),
        store.rollback(id, '-r'),
        store.destroySnapshot(id, 'drover-'),
      ];
      for (const p of bad) expect(await codeOf(p)).toBe('DROVER_ZFS_INVALID_NAME');
    });

    it('reports a missing dataset as DROVER_DATASET_NOT_FOUND', async () => {
      const id = randomUUID();
      expect(await codeOf(store.setReadonly(id, true))).toBe('DROVER_DATASET_NOT_FOUND');
      expect(await codeOf(store.listSnapshots(id))).toBe('DROVER_DATASET_NOT_FOUND');
      expect(await codeOf(store.createSnapshot(id, 'drover-a'))).toBe('DROVER_DATASET_NOT_FOUND');
      expect(await codeOf(store.mount(id))).toBe('DROVER_DATASET_NOT_FOUND');
    });
  });
}

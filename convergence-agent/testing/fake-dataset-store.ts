/**
 * An in-memory DatasetStore + SnapshotStore for the planner's and the loop's tests. It obeys
 * the same contract as the zfs adapter (dataset-store.contract.ts runs against both):
 * validated names, idempotent operations, the same error codes.
 */
import { DroverError } from '#common/errors.ts';
import { assertHoldTag, assertPoolName, assertSnapshotName, datasetPath, snapshotPath } from '../zfs/names.ts';
import type { CreateDatasetOptions, DatasetStore, SnapshotStore, ZfsDatasetInfo, ZfsSnapshotInfo } from '../zfs/types.ts';

interface FakeSnapshot {
  snapshot: string;
  guid: string;
  createtxg: number;
  holds: Set<string>;
}

interface FakeDataset {
  datasetId: string;
  refquota: number | null;
  readonly: boolean;
  mounted: boolean;
  usedBytes: number;
  snapshots: FakeSnapshot[];
  /** Bytes written since the newest snapshot. */
  written: number;
  /** The `drover:hold-tags` property. */
  holdTags: string[];
}

export interface FakeDatasetStoreOptions {
  pool?: string;
  mountRoot?: string | null;
  /** Whether `written` is known (OpenZFS); default false, as on zfs-fuse 0.7. */
  writtenProperty?: boolean;
}

export class FakeDatasetStore implements DatasetStore, SnapshotStore {
  readonly pool: string;
  private readonly mountRoot: string | null;
  private readonly writtenProperty: boolean;
  private readonly datasets = new Map<string, FakeDataset>();
  private txg = 1;
  private guidSeed = 0x9e3779b97f4a7c15n;

  constructor(options: FakeDatasetStoreOptions = {}) {
    const pool = options.pool ?? 'fakepool';
    assertPoolName(pool);
    this.pool = pool;
    this.mountRoot = options.mountRoot ?? null;
    this.writtenProperty = options.writtenProperty ?? false;
  }

  /** Test helper: pretends the application wrote `bytes` more bytes into the dataset. */
  write(datasetId: string, bytes: number): void {
    const ds = this.must(datasetId);
    if (ds.readonly) throw new DroverError('DROVER_ZFS_READONLY', `dataset ${datasetId} is read-only`);
    if (ds.refquota !== null && ds.usedBytes + bytes > ds.refquota) {
      throw new DroverError('DROVER_ZFS_NO_SPACE', `dataset ${datasetId} is out of space`);
    }
    ds.usedBytes += bytes;
    ds.written += bytes;
  }

  /** Bytes written since the newest snapshot; null unless the store was made with `writtenProperty`. */
  async written(datasetId: string): Promise<number | null> {
    const ds = this.must(datasetId);
    return this.writtenProperty ? ds.written : null;
  }

  async recordedHoldTags(datasetId: string): Promise<string[]> {
    return [...(this.datasets.get(datasetId)?.holdTags ?? [])];
  }

  async recordHoldTags(datasetId: string, tags: readonly string[]): Promise<void> {
    for (const tag of tags) assertHoldTag(tag);
    this.must(datasetId).holdTags = [...new Set(tags)].sort();
  }

  async listDatasets(): Promise<ZfsDatasetInfo[]> {
    return [...this.datasets.values()].map((d) => this.info(d)).sort((a, b) => a.datasetId.localeCompare(b.datasetId));
  }

  async listAll(): Promise<{ datasets: ZfsDatasetInfo[]; snapshots: Record<string, ZfsSnapshotInfo[]> }> {
    const datasets = await this.listDatasets();
    const snapshots: Record<string, ZfsSnapshotInfo[]> = {};
    for (const d of datasets) snapshots[d.datasetId] = await this.listSnapshots(d.datasetId);
    return { datasets, snapshots };
  }

  async getDataset(datasetId: string): Promise<ZfsDatasetInfo | null> {
    const name = datasetPath(this.pool, datasetId);
    const ds = this.datasets.get(datasetId);
    return ds && name ? this.info(ds) : null;
  }

  async createDataset(datasetId: string, options: CreateDatasetOptions): Promise<ZfsDatasetInfo> {
    datasetPath(this.pool, datasetId);
    checkSize(options.maximumSize);
    const existing = this.datasets.get(datasetId);
    if (existing) {
      existing.refquota = options.maximumSize;
      return this.info(existing);
    }
    const ds: FakeDataset = { datasetId, refquota: options.maximumSize, readonly: false, mounted: true, usedBytes: 24_576, snapshots: [], written: 0, holdTags: [] };
    this.datasets.set(datasetId, ds);
    this.txg++;
    return this.info(ds);
  }

  async destroyDataset(datasetId: string): Promise<void> {
    datasetPath(this.pool, datasetId);
    const ds = this.datasets.get(datasetId);
    if (!ds) return;
    if (ds.snapshots.some((s) => s.holds.size > 0)) {
      throw new DroverError('DROVER_ZFS_BUSY', `cannot destroy ${datasetId}: a snapshot is held`, { retryable: true });
    }
    this.datasets.delete(datasetId);
  }

  async setReadonly(datasetId: string, readonly: boolean): Promise<void> {
    this.must(datasetId).readonly = readonly;
  }

  async rollbackToNewest(datasetId: string, snapshot: string): Promise<void> {
    const ds = this.must(datasetId);
    const newest = ds.snapshots.at(-1);
    if (newest?.snapshot !== snapshot) throw new DroverError('DROVER_ZFS_ROLLBACK_BLOCKED', `cannot roll back to ${snapshot}: more recent snapshots exist or it does not`, { detail: { datasetId, snapshot } });
    ds.written = 0;
    this.rollbacks.push(`${datasetId}@${snapshot}`);
  }

  /** Every rollback to a newest snapshot, in order (`<id>@<snapshot>`). */
  readonly rollbacks: string[] = [];

  async setMaximumSize(datasetId: string, bytes: number | null): Promise<void> {
    const ds = this.must(datasetId);
    checkSize(bytes);
    ds.refquota = bytes;
  }

  async mount(datasetId: string): Promise<void> {
    this.must(datasetId).mounted = true;
  }

  async unmount(datasetId: string): Promise<void> {
    this.must(datasetId).mounted = false;
  }

  async listSnapshots(datasetId: string): Promise<ZfsSnapshotInfo[]> {
    const ds = this.must(datasetId);
    return ds.snapshots.map((s) => this.snapInfo(datasetId, s));
  }

  async createSnapshot(datasetId: string, snapshot: string): Promise<ZfsSnapshotInfo> {
    snapshotPath(this.pool, datasetId, snapshot);
    const ds = this.must(datasetId);
    let snap = ds.snapshots.find((s) => s.snapshot === snapshot);
    if (!snap) {
      snap = { snapshot, guid: this.nextGuid(), createtxg: ++this.txg, holds: new Set() };
      ds.snapshots.push(snap);
      ds.written = 0;
    }
    return this.snapInfo(datasetId, snap);
  }

  async destroySnapshot(datasetId: string, snapshot: string): Promise<void> {
    snapshotPath(this.pool, datasetId, snapshot);
    const ds = this.datasets.get(datasetId);
    const snap = ds?.snapshots.find((s) => s.snapshot === snapshot);
    if (!ds || !snap) return;
    if (snap.holds.size > 0) {
      throw new DroverError('DROVER_ZFS_BUSY', `cannot destroy ${snapshot}: it is held`, { retryable: true });
    }
    ds.snapshots = ds.snapshots.filter((s) => s !== snap);
  }

  async hold(datasetId: string, snapshot: string, tag: string): Promise<void> {
    assertHoldTag(tag);
    this.mustSnapshot(datasetId, snapshot).holds.add(tag);
  }

  async release(datasetId: string, snapshot: string, tag: string): Promise<void> {
    assertHoldTag(tag);
    snapshotPath(this.pool, datasetId, snapshot);
    this.datasets.get(datasetId)?.snapshots.find((s) => s.snapshot === snapshot)?.holds.delete(tag);
  }

  async rollback(datasetId: string, snapshot: string): Promise<void> {
    const snap = this.mustSnapshot(datasetId, snapshot);
    const ds = this.must(datasetId);
    const later = ds.snapshots.filter((s) => s.createtxg > snap.createtxg);
    if (later.some((s) => s.holds.size > 0)) {
      throw new DroverError('DROVER_ZFS_BUSY', `cannot roll back ${datasetId}: a later snapshot is held`, { retryable: true });
    }
    ds.snapshots = ds.snapshots.filter((s) => s.createtxg <= snap.createtxg);
  }

  private must(datasetId: string): FakeDataset {
    datasetPath(this.pool, datasetId);
    const ds = this.datasets.get(datasetId);
    if (!ds) {
      throw new DroverError('DROVER_DATASET_NOT_FOUND', `dataset ${datasetId} does not exist in ${this.pool}`, {
        detail: { datasetId, pool: this.pool },
      });
    }
    return ds;
  }

  private mustSnapshot(datasetId: string, snapshot: string): FakeSnapshot {
    assertSnapshotName(snapshot);
    const snap = this.must(datasetId).snapshots.find((s) => s.snapshot === snapshot);
    if (!snap) {
      throw new DroverError('DROVER_ZFS_NOT_FOUND', `snapshot ${snapshotPath(this.pool, datasetId, snapshot)} does not exist`);
    }
    return snap;
  }

  private info(ds: FakeDataset): ZfsDatasetInfo {
    return {
      datasetId: ds.datasetId,
      name: datasetPath(this.pool, ds.datasetId),
      mountpoint: this.mountRoot === null ? `/${datasetPath(this.pool, ds.datasetId)}` : `${this.mountRoot}/${ds.datasetId}`,
      mounted: ds.mounted,
      readonly: ds.readonly,
      refquota: ds.refquota,
      usedBytes: ds.usedBytes,
      referencedBytes: ds.usedBytes,
    };
  }

  private snapInfo(datasetId: string, s: FakeSnapshot): ZfsSnapshotInfo {
    return {
      name: snapshotPath(this.pool, datasetId, s.snapshot),
      snapshot: s.snapshot,
      guid: s.guid,
      createtxg: s.createtxg,
      userrefs: s.holds.size,
    };
  }

  private nextGuid(): string {
    // xorshift64: deterministic, 64-bit, never zero.
    let x = this.guidSeed;
    x ^= (x << 13n) & 0xffffffffffffffffn;
    x ^= x >> 7n;
    x ^= (x << 17n) & 0xffffffffffffffffn;
    this.guidSeed = x;
    return x.toString(10);
  }
}

function checkSize(bytes: number | null): void {
  if (bytes !== null && (!Number.isSafeInteger(bytes) || bytes <= 0)) {
    throw new DroverError('DROVER_ZFS_INVALID_SIZE', `maximum size must be a positive whole number of bytes, got ${bytes}`);
  }
}

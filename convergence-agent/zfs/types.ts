/**
 * What the rest of the agent needs from ZFS, as small interfaces (docs/DESIGN.md §13).
 * The real implementation runs `zfs`/`zpool` (zfs.ts, the only file that does); an in-memory
 * fake serves the planner's tests. One contract suite runs against both.
 *
 * Datasets are named `<pool>/drover/<dataset_id>`; snapshots `drover-…`; holds `drover-…`.
 * Every method validates names before any command runs (DROVER_ZFS_INVALID_NAME).
 */
export interface ZfsSnapshotInfo {
  /** Full name: `<pool>/drover/<dataset_id>@<snapshot>`. */
  name: string;
  /** The part after `@`. */
  snapshot: string;
  /** Decimal string: guids are 64-bit and do not fit a JS number. */
  guid: string;
  createtxg: number;
  /** Number of holds (zfs-fuse cannot list hold tags; `userrefs` counts them). */
  userrefs: number;
}

export interface ZfsDatasetInfo {
  datasetId: string;
  /** Full name: `<pool>/drover/<dataset_id>`. */
  name: string;
  mountpoint: string | null;
  mounted: boolean;
  readonly: boolean;
  /** Bytes; null when unlimited. */
  refquota: number | null;
  usedBytes: number;
  referencedBytes: number;
}

export interface CreateDatasetOptions {
  /** Bytes; null for no limit. */
  maximumSize: number | null;
}

/** The dataset operations the convergence loop performs. Every method is idempotent. */
export interface DatasetStore {
  readonly pool: string;
  listDatasets(): Promise<ZfsDatasetInfo[]>;
  getDataset(datasetId: string): Promise<ZfsDatasetInfo | null>;
  createDataset(datasetId: string, options: CreateDatasetOptions): Promise<ZfsDatasetInfo>;
  /** Destroys the dataset and its snapshots; a no-op when it does not exist. */
  destroyDataset(datasetId: string): Promise<void>;
  setReadonly(datasetId: string, readonly: boolean): Promise<void>;
  /** Rolls the filesystem back to `snapshot`, which must be the newest (nothing destroyed); throws otherwise. */
  rollbackToNewest(datasetId: string, snapshot: string): Promise<void>;
  setMaximumSize(datasetId: string, bytes: number | null): Promise<void>;
  mount(datasetId: string): Promise<void>;
  /**
   * `setReadonly(id, false)` then `mount(id)` as one step, for a migration's target at handoff
   * (the parts may run side by side). Optional: without it the executor does the two in turn.
   */
  makeWritableMounted?(datasetId: string): Promise<void>;
  unmount(datasetId: string): Promise<void>;
  listSnapshots(datasetId: string): Promise<ZfsSnapshotInfo[]>;
  /**
   * listDatasets and every dataset's listSnapshots at once (one zfs command: discovery runs
   * every pass); `rejoined`, where the store reads it in the same command, the copies that
   * `listDiverged` would give as rejoined.
   */
  listAll(): Promise<{ datasets: ZfsDatasetInfo[]; snapshots: Record<string, ZfsSnapshotInfo[]>; rejoined?: DivergedCopyInfo[] }>;
  /**
   * Moves the dataset aside after a failover took it elsewhere (docs/DESIGN.md §18):
   * `<pool>/drover/<id>` → `<pool>/drover-diverged/<id>-g<generation>`, unmounted, mountpoint
   * none, read-only; snapshots go with it. Never destroys anything. Idempotent: done when the
   * kept copy exists (the dataset, if back meanwhile, is left alone). Optional: fakes without it
   * keep the copy in place.
   */
  setAside?(datasetId: string, generation: number): Promise<void>;
  /**
   * The failed node's side of a failover, before a copy-aside: when the copy holds the promoted
   * snapshot and nothing written after it (every later snapshot and the filesystem unchanged,
   * decided by zfs), puts the copy at that snapshot in place — its later snapshots kept aside
   * under `<pool>/drover-diverged/`, never destroyed — marks it `drover:rejoined=<generation>` and
   * returns true: it becomes a replica. Otherwise changes nothing but a check snapshot and returns false.
   */
  rejoin?(datasetId: string, generation: number, promoted: string): Promise<boolean>;
  /** Removes the `drover:rejoined` mark of a copy that is an ordinary replica again. */
  clearRejoined?(datasetId: string): Promise<void>;
  /** The copies kept under `<pool>/drover-diverged/`; [] when there are none. */
  listDiverged?(): Promise<DivergedCopyInfo[]>;
  /**
   * `listDiverged` without the rejoined copies, which `listAll` gives with its `rejoined`:
   * discovery then reads the pool with two zfs commands a pass, not three.
   */
  listKeptDiverged?(): Promise<DivergedCopyInfo[]>;
}

/**
 * A copy kept after a failover: under `<pool>/drover-diverged/` (it held writes after the
 * promoted snapshot), or — `rejoined` — left in place at the promoted snapshot because it held
 * nothing after it (it becomes a replica; `name` is `<pool>/drover/<id>`).
 */
export interface DivergedCopyInfo {
  rejoined?: true;
  datasetId: string;
  /** Full name: `<pool>/drover-diverged/<dataset_id>-g<generation>`. */
  name: string;
  generation: number;
  usedBytes: number;
}

/**
 * Snapshot operations the replication engine performs (all names validated, all idempotent
 * unless noted). Implemented by the zfs adapter and the in-memory fake.
 */
export interface SnapshotStore {
  /** Takes `<dataset>@<snapshot>`; returns the existing one when it is already there. */
  createSnapshot(datasetId: string, snapshot: string): Promise<ZfsSnapshotInfo>;
  /** One `destroy` per snapshot (zfs-fuse has no `a,b` syntax); a no-op when absent. Held → DROVER_ZFS_BUSY. */
  destroySnapshot(datasetId: string, snapshot: string): Promise<void>;
  /** Tolerates `tag already exists`. */
  hold(datasetId: string, snapshot: string, tag: string): Promise<void>;
  /** Tolerates `no such tag` and a missing snapshot. */
  release(datasetId: string, snapshot: string, tag: string): Promise<void>;
  /** `rollback -r`: destroys later snapshots. Only for a drover-owned, non-primary replica. */
  rollback(datasetId: string, snapshot: string): Promise<void>;
}

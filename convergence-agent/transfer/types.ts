/**
 * The replication engine's view of the receiving side, and its public API types.
 * A transport (ssh, tls, or a local store) gives a `Peer`; `beginStep` gives exclusive use of
 * one dataset on that peer for one replication step (docs/DESIGN.md §7).
 */
import type { Writable } from 'node:stream';
import type { HoldTagPair } from '../zfs/names.ts';
import type { ZfsDatasetInfo, ZfsSnapshotInfo } from '../zfs/types.ts';
import type { ZfsFeatures } from '../zfs/zfs-features.ts';
import type { PumpWatch } from './native-pump.ts';
import type { ReceivedSnapshot } from './received.ts';

/** The receiving side of one step: the operations the engine runs against the peer's dataset. */
export interface PeerStep {
  readonly datasetId: string;
  getDataset(): Promise<ZfsDatasetInfo | null>;
  /** drover snapshots, oldest first; [] when the dataset does not exist. */
  listSnapshots(): Promise<ZfsSnapshotInfo[]>;
  /**
   * `getDataset` and `listSnapshots` in one look (one zfs command on the peer). Absent: the
   * engine asks the two.
   */
  state?(): Promise<{ dataset: ZfsDatasetInfo | null; snapshots: ZfsSnapshotInfo[] }>;
  hold(snapshot: string, tag: string): Promise<void>;
  release(snapshot: string, tag: string): Promise<void>;
  /** `rollback -r`: only for a drover-owned, read-only replica. */
  rollback(snapshot: string): Promise<void>;
  /**
   * Moves the peer's read-only copy (a diverged replica) aside, whole, to
   * `<pool>/drover-diverged/<id>-g<generation>`, unmounted and read-only; never destroys
   * anything. Refused for a writable dataset or when that name exists. Returns the kept name.
   * Absent: this peer cannot (the engine then refuses the step as diverged).
   */
  setAside?(generation: number): Promise<string>;
  destroySnapshot(snapshot: string): Promise<void>;
  resumeToken(): Promise<string | null>;
  abortResume(): Promise<void>;
  /**
   * Starts `zfs receive -u` on the peer. Write the stream to `input` and end it; `done`
   * resolves once receive exited 0 and (after a full receive) the new replica was made
   * read-only and unmounted at drover's mountpoint, with the snapshot the peer read back
   * right after it (received.ts; null from a peer that does not report it); it rejects with
   * a classified DroverError otherwise.
   */
  receive(options: { resumable: boolean; full: boolean }): ReceiveSink;
  /** Ends the step (releases the peer-side lock). Idempotent; never throws. */
  end(): Promise<void>;
}

export interface ReceiveSink {
  readonly input: Writable;
  /**
   * Set when the stream bypasses this process (the tls transport's native pump): `input` is
   * then a descriptor to hand `zfs send` as its stdout, never written here (the caller
   * closes its own copy once zfs has it), and `pumped` resolves with the bytes moved.
   */
  readonly direct?: { pumped(watch: PumpWatch): Promise<number> };
  /** The receive's verdict: the snapshot the peer holds after it (received.ts), or null when the peer does not say. */
  readonly done: Promise<ReceivedSnapshot | null>;
  /** Cuts the receive short (kills it on the peer); `done` then rejects. */
  abort(reason: Error): void;
}

export interface Peer {
  /** Stable key of the peer (its node uuid): journal file names and mutex keys. */
  readonly id: string;
  features(): Promise<ZfsFeatures>;
  /**
   * Exclusive use of `datasetId` on the peer until `end()`: a second step for the same
   * dataset waits (bounded by `waitMs`, then DROVER_TRANSFER_BUSY, retryable).
   */
  beginStep(datasetId: string, options?: { waitMs?: number; signal?: AbortSignal }): Promise<PeerStep>;
  /**
   * Opens the next receive into `datasetId` ahead of its step: the peer's receiver has the
   * header and its `zfs receive` is started, waiting for the stream, when this resolves. The
   * next step's `receive` with the same options uses it; one with other options, or none
   * within a minute, closes it (a receive that got no stream changes nothing). Absent: this
   * transport starts each receive when its step asks.
   */
  prepareReceive?(datasetId: string, options: { resumable: boolean; full: boolean }): Promise<void>;
  /** Closes connections; the peer may be used again afterwards (it reconnects). */
  close(): Promise<void>;
}

export interface StepHoldTags {
  source: HoldTagPair;
  target: HoldTagPair;
}

/**
 * Which snapshots of one side to destroy after a step, by name. `snapshots` are that side's
 * drover snapshots, `other` the other side's, both as listed after the step; `snapshot` is
 * the step's new snapshot (now the newest common one). Must be pure.
 */
export type PruneRule = (input: { side: 'source' | 'target'; snapshots: readonly ZfsSnapshotInfo[]; other: readonly ZfsSnapshotInfo[]; snapshot: string }) => string[];

export interface TransferProgress {
  datasetId: string;
  bytes: number;
  /** Bytes per second since the stream started. */
  bytesPerSecond: number;
  elapsedMs: number;
}

export interface ReplicateOptions {
  datasetId: string;
  peer: Peer;
  /** The migration this step works for: its id is on the step's log records (docs/DESIGN.md §25). */
  corr?: string;
  /** The snapshot to send (taken when missing); default a fresh `drover-<ts>-<seq>`. */
  snapshotName?: string;
  /**
   * The source's snapshots, listed after `snapshotName` was taken and after anything that
   * destroyed a snapshot of the dataset (continuous replication: one listing per interval,
   * shared by the replicas' steps that send its snapshot). The step plans with it instead of
   * listing again, in its first attempt only and only when no journal of an earlier step was
   * found; a listing without `snapshotName` is ignored (the step lists).
   */
  sourceListing?: () => Promise<ZfsSnapshotInfo[]>;
  /**
   * The target is a drover-owned replica that is not primary: it may be rolled back to the
   * newest common snapshot (discarding its newer snapshots and any modification).
   */
  allowRollback?: boolean;
  /**
   * Destroy old drover snapshots on both sides after the step (default true: all but the
   * newest `keepSnapshots`). A migration's final send says false: it runs while the
   * application is stopped, and the next step prunes anyway. A function decides instead
   * (continuous replication's grid): the engine still never destroys a held snapshot or
   * the step's new snapshot.
   */
  prune?: boolean | PruneRule;
  /**
   * The step's hold tags on each side; default HOLD_TAGS on both (a migration's). Continuous
   * replication holds per-replica tags on the source (names.ts replicaHoldTags).
   */
  holdTags?: StepHoldTags;
  /**
   * Leave the holds and the step journal as they are after the snapshot is verified on the
   * peer; `Replicator.settle()` finishes them later (or the next step's recovery does). A
   * migration's final send says true: settling is four zfs commands inside the stopped interval.
   */
  deferSettle?: boolean;
  /**
   * No step holds (`drover-step`) on a base that both sides' listings show held already (by
   * the `base` hold of the step that made it the base): each `zfs hold` is a transaction
   * group's sync on zfs-fuse, and the target's would be synced before the receive's own. A
   * migration's final send says true; a base with no hold on either side is held as always,
   * and so is one a retry may roll back to.
   */
  skipHeldBaseHolds?: boolean;
  /**
   * The snapshot the caller's base tags hold on both sides (continuous replication: the one
   * its last step settled on). When the step's base is that snapshot and both listings show
   * it held, no step holds are taken, as with `skipHeldBaseHolds`, which cannot tell whose
   * hold a listing counts (zfs-fuse counts holds, a primary holds one base per replica).
   */
  heldBase?: string;
  /**
   * Send every source snapshot between the base and the new one (`zfs send -I`), not only
   * the new one: a move of a replicated dataset, so its new primary holds every snapshot
   * any replica may hold (replication/DESIGN.md "Moves").
   */
  intermediates?: boolean;
  /**
   * A move to one of the dataset's replicas: when that replica diverged (written outside
   * drover, or sharing no snapshot), set it aside under `drover-diverged/` with this
   * generation (the migration's) and send the dataset whole, instead of failing. Never with
   * `allowRollback`; a writable target is still refused.
   */
  setAsideDiverged?: number;
  onProgress?: (progress: TransferProgress) => void;
  signal?: AbortSignal;
}

export interface ReplicateResult {
  snapshot: string;
  guid: string;
  bytes: number;
  incremental: boolean;
  /** The common snapshot the increment was based on; null for a full send. */
  baseSnapshot: string | null;
  /** True when the interrupted step from the journal was finished instead of a new one. */
  resumed: boolean;
  /**
   * How the stream travelled: 'native' through the native pumps, outside both agents'
   * JavaScript (tls, when both agents have them); 'in-process' through this process. Absent
   * when nothing was streamed.
   */
  dataPath?: 'native' | 'in-process';
  /** The full name the diverged target copy was set aside to (`setAsideDiverged`), when it was. */
  setAside?: string;
}

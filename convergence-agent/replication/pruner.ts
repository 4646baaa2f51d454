/**
 * Pruning by the grid, taken out of the replication step (DESIGN.md "Pruning off the step").
 * The engine used to prune both sides after every step, before the step counted as done:
 * four listings, a release per stale hold, a listing and a destroy per snapshot, one after the
 * other. Here each side is pruned at most every `pruneEveryMs(interval)` (prune.ts), and:
 *
 * - the primary's side runs beside the steps (not awaited by any), one at a time per dataset,
 *   deciding by `sourcePrunePlan` (nothing in a running step's `-I` range; a step about to
 *   send waits for a pruning under way, `idle`), its
 *   destroys issued together (zfs-fuse takes one snapshot per `destroy`, and commands issued
 *   together share a transaction group's wait);
 * - a replica's side runs in its pair's step after the holds settled (its receiving lock:
 *   nothing is received meanwhile), one listing, the destroys together.
 *
 * Both keep what the engine's rule kept: the newest snapshot, the newest common one with every
 * partner, every held one, every undatable one. Pure decisions live in prune.ts.
 */
import type { Clock } from '#common/clock.ts';
import { isDroverError, toDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { RetentionGrid } from '#common/retention-grid.ts';
import type { PeerStep } from '../transfer/types.ts';
import { HOLD_TAGS } from '../zfs/names.ts';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';
import { newestCommon, pruneEveryMs, snapshotsToPruneByGrid, sourcePrunePlan, staleBaseHolds } from './prune.ts';
import type { ReplicationStore } from './scheduler.ts';

/** What the primary's pruning of one dataset needs, read when it runs. */
export interface SourceSide {
  grid: RetentionGrid;
  /** Each replica: its base tag on the primary and its guids as last seen (null: unknown). */
  replicas: Array<{ baseTag: string; guids: ReadonlySet<string> | null }>;
  /** The running steps: their replica's guids and the snapshot each sends. */
  running: Array<{ guids: ReadonlySet<string> | null; sending: string }>;
}

export class Pruner {
  private readonly sourceAt = new Map<string, number>();
  private readonly sourceRuns = new Map<string, Promise<void>>();
  private readonly targetAt = new Map<string, number>();

  constructor(private readonly deps: { store: ReplicationStore; clock: Clock; log: Logger }) {}

  /** True when the replica side of pair `key` is due (and marks it pruned now). */
  targetDue(key: string, intervalSeconds: number): boolean {
    const now = this.deps.clock.now();
    const last = this.targetAt.get(key);
    if (last !== undefined && now - last < pruneEveryMs(intervalSeconds)) return false;
    this.targetAt.set(key, now);
    return true;
  }

  /** Forgets pair `key` (it left): its next step prunes. */
  forget(key: string): void {
    this.targetAt.delete(key);
  }

  /**
   * Starts the primary's pruning of `datasetId` when due and none runs; never awaited by a
   * step. `side()` is read when it runs (the replicas' guids as they are then). True when it
   * started one.
   */
  pruneSourceWhenDue(datasetId: string, intervalSeconds: number, side: () => SourceSide | null): boolean {
    const now = this.deps.clock.now();
    const last = this.sourceAt.get(datasetId);
    if (this.sourceRuns.has(datasetId) || (last !== undefined && now - last < pruneEveryMs(intervalSeconds))) return false;
    this.sourceAt.set(datasetId, now);
    const run = this.pruneSource(datasetId, side).finally(() => this.sourceRuns.delete(datasetId));
    this.sourceRuns.set(datasetId, run);
    return true;
  }

  /** Resolves once no pruning of `datasetId`'s primary side runs (a move waits for it). */
  async idle(datasetId?: string): Promise<void> {
    const runs = datasetId === undefined ? [...this.sourceRuns.values()] : [this.sourceRuns.get(datasetId)].filter((r) => r !== undefined);
    await Promise.allSettled(runs);
  }

  private async pruneSource(datasetId: string, side: () => SourceSide | null): Promise<void> {
    const { store, log, clock } = this.deps;
    const began = clock.now();
    try {
      let snapshots = await store.listSnapshots(datasetId);
      const first = side();
      if (first === null) return;
      // A replica's base tag left on a snapshot older than its base (a step that failed half-way).
      let released = false;
      for (const r of first.replicas) {
        if (r.guids === null) continue;
        const stale = staleBaseHolds(snapshots, newestCommon(snapshots, r.guids));
        if (stale.length === 0) continue;
        await releaseAll(store, datasetId, stale, r.baseTag);
        released = true;
      }
      if (released) snapshots = await store.listSnapshots(datasetId);
      const now = side();
      if (now === null) return;
      const doomed = sourcePrunePlan({ snapshots, grid: now.grid, replicas: now.replicas.map((r) => r.guids), running: now.running });
      await destroyAll(doomed, (s) => store.destroySnapshot(datasetId, s));
      if (doomed.length > 0) log.debug({ datasetId, side: 'source', destroyed: doomed.length, ms: clock.now() - began }, 'pruned by the grid');
    } catch (err) {
      // Housekeeping: tried again when next due.
      log.warn({ err: toDroverError(err), datasetId, side: 'source' }, 'pruning failed');
    }
  }

  /**
   * The replica's side, in its pair's step (`step` is that step's peer lock, the holds
   * settled): `drover-base` released from snapshots older than the replica's newest, then
   * the grid. Returns the replica's guids afterwards (null when it could not tell).
   */
  async pruneTarget(input: { step: PeerStep; datasetId: string; grid: RetentionGrid; others: ReadonlyArray<ReadonlySet<string>> }): Promise<Set<string> | null> {
    const { store, log, clock } = this.deps;
    const { step, datasetId, grid, others } = input;
    const began = clock.now();
    try {
      const [source, listed] = await Promise.all([store.listSnapshots(datasetId), step.listSnapshots()]);
      let target = listed;
      const sourceGuids = new Set(source.map((s) => s.guid));
      const stale = staleBaseHolds(target, newestCommon(target, sourceGuids));
      if (stale.length > 0) {
        await Promise.all(stale.map((s) => step.release(s, HOLD_TAGS.base)));
        target = await step.listSnapshots();
      }
      const newest = [...target].sort((a, b) => a.createtxg - b.createtxg).at(-1);
      const doomed = new Set(snapshotsToPruneByGrid({ snapshots: target, grid, partners: [sourceGuids, ...others] }).filter((s) => s !== newest?.snapshot));
      const held = new Set(target.filter((s) => s.userrefs > 0).map((s) => s.snapshot));
      const gone = await destroyAll([...doomed].filter((s) => !held.has(s)), (s) => step.destroySnapshot(s));
      if (gone.size > 0) log.debug({ datasetId, side: 'target', destroyed: gone.size, ms: clock.now() - began }, 'pruned by the grid');
      return new Set(target.filter((s: ZfsSnapshotInfo) => !gone.has(s.snapshot)).map((s) => s.guid));
    } catch (err) {
      log.warn({ err: toDroverError(err), datasetId, side: 'target' }, 'pruning failed');
      return null;
    }
  }
}

/** Releases `tag` from `snapshots`: one command where the store can, else one each. */
async function releaseAll(store: ReplicationStore, datasetId: string, snapshots: string[], tag: string): Promise<void> {
  if (store.releaseMany) await store.releaseMany(datasetId, snapshots, tag);
  else for (const s of snapshots) await store.release(datasetId, s, tag);
}

/** Destroys `names` side by side; a snapshot found held meanwhile (busy) is skipped. Returns what went. */
async function destroyAll(names: readonly string[], destroy: (s: string) => Promise<void>): Promise<Set<string>> {
  const gone = new Set<string>();
  const results = await Promise.allSettled(names.map(async (s) => (await destroy(s), gone.add(s))));
  for (const r of results) if (r.status === 'rejected' && !isDroverError(r.reason, 'DROVER_ZFS_BUSY')) throw r.reason;
  return gone;
}

/**
 * Which of drover's replication snapshots to destroy on one side after a step (DESIGN.md
 * "Pruning"). Pure: no clock (a snapshot's time is in its name), no I/O.
 *
 * Kept, whatever the grid says: the newest snapshot; on the primary the newest snapshot it
 * shares (by guid) with every replica whose snapshots are known; on a replica the newest one
 * it shares with the primary; every held snapshot (the per-replica base holds cover a replica
 * whose snapshots are not known yet); every snapshot whose time cannot be read from its name.
 * Only drover's snapshots are ever listed, so nothing else can be proposed.
 */
import { keptByGrid, type RetentionGrid } from '#common/retention-grid.ts';
import type { PruneRule } from '../transfer/types.ts';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';

const NAME_TIME = /^drover-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z-\d+$/;

/** The creation time (ms epoch) encoded in a `drover-<UTC yyyymmddThhmmssmmmZ>-<seq>` name; null for any other name. */
export function snapshotTime(name: string): number | null {
  const m = NAME_TIME.exec(name);
  if (!m) return null;
  const [y, mo, d, h, mi, s, ms] = m.slice(1).map(Number) as [number, number, number, number, number, number, number];
  const t = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  return Number.isFinite(t) ? t : null;
}

/** The newest (by createtxg) of `snapshots` whose guid is in `guids`; null when none. */
export function newestCommon(snapshots: readonly ZfsSnapshotInfo[], guids: ReadonlySet<string>): ZfsSnapshotInfo | null {
  let best: ZfsSnapshotInfo | null = null;
  for (const s of snapshots) if (guids.has(s.guid) && (best === null || s.createtxg > best.createtxg)) best = s;
  return best;
}

export interface PruneInput {
  snapshots: readonly ZfsSnapshotInfo[];
  grid: RetentionGrid;
  /** Guid sets of the other sides this side must keep a common snapshot with (the primary's replicas, or a replica's primary). */
  partners: ReadonlyArray<ReadonlySet<string>>;
}

/** Names to destroy on one side, oldest first. */
export function snapshotsToPruneByGrid(input: PruneInput): string[] {
  const { snapshots, grid, partners } = input;
  if (snapshots.length === 0) return [];
  const keep = new Set<string>();
  const dated: Array<{ name: string; createdAt: number }> = [];
  for (const s of snapshots) {
    const t = snapshotTime(s.snapshot);
    if (t === null || s.userrefs > 0) keep.add(s.snapshot);
    else dated.push({ name: s.snapshot, createdAt: t });
  }
  const sorted = [...snapshots].sort((a, b) => a.createtxg - b.createtxg);
  keep.add(sorted.at(-1)!.snapshot);
  for (const guids of partners) {
    const common = newestCommon(snapshots, guids);
    if (common) keep.add(common.snapshot);
  }
  // The grid's "now" is the newest snapshot's time (retention-grid.ts), so a replica that
  // stopped receiving never prunes itself empty.
  const newestTime = snapshots.map((s) => snapshotTime(s.snapshot)).filter((t): t is number => t !== null);
  const gridNow = newestTime.length > 0 ? Math.max(...newestTime) : undefined;
  for (const name of keptByGrid(grid, dated, gridNow)) keep.add(name);
  return sorted.filter((s) => !keep.has(s.snapshot)).map((s) => s.snapshot);
}

/**
 * The engine's PruneRule for one (dataset, replica) step. `knownReplicas()` gives the guid
 * sets of the dataset's *other* replicas as last seen (a replica not seen yet is covered by
 * its base hold); the step's own replica is the rule's `other`. Each side keeps its newest
 * common snapshot with every one of them (the target may become primary by a move).
 */
export function replicationPruneRule(grids: { primary: RetentionGrid; replicas: RetentionGrid }, knownReplicas: () => ReadonlyArray<ReadonlySet<string>>): PruneRule {
  return ({ side, snapshots, other }) => {
    const otherGuids = new Set(other.map((s) => s.guid));
    // A replica keeps its newest common snapshot with the other replicas too: if a move makes
    // it primary, they must still share a base with it.
    if (side === 'target') return snapshotsToPruneByGrid({ snapshots, grid: grids.replicas, partners: [otherGuids, ...knownReplicas()] });
    return snapshotsToPruneByGrid({ snapshots, grid: grids.primary, partners: [otherGuids, ...knownReplicas()] });
  };
}

/**
 * How long a side goes unpruned at most (DESIGN.md "Pruning off the step"): ten intervals, a
 * minute at most. In between a side holds up to that many snapshots beyond its grid; the grid
 * is applied whole each time. An interval of a minute or more prunes after every step.
 */
export function pruneEveryMs(intervalSeconds: number): number {
  return Math.min(10 * intervalSeconds * 1000, 60_000);
}

/** A side's snapshots to release a base tag from: held ones older (createtxg) than `newest`'s, which is the base now. */
export function staleBaseHolds(snapshots: readonly ZfsSnapshotInfo[], newest: ZfsSnapshotInfo | null): string[] {
  if (newest === null) return [];
  return snapshots.filter((s) => s.userrefs > 0 && s.createtxg < newest.createtxg).map((s) => s.snapshot);
}

export interface SourcePruneInput {
  /** The primary's drover snapshots, as listed now. */
  snapshots: readonly ZfsSnapshotInfo[];
  grid: RetentionGrid;
  /** Each replica's snapshot guids as last seen; null: not known (the primary then prunes nothing). */
  replicas: ReadonlyArray<ReadonlySet<string> | null>;
  /** Each running step: its replica's guids (its base is the newest common snapshot) and what it sends. */
  running: ReadonlyArray<{ guids: ReadonlySet<string> | null; sending: string }>;
}

/**
 * The primary's pruning, run beside the steps rather than inside one (DESIGN.md "Pruning off
 * the step"): the grid rule of `snapshotsToPruneByGrid` (newest, newest common with every
 * replica, held and undatable kept), nothing while a replica is unknown, and nothing in a
 * running step's range — it sends `-I` from its replica's newest common snapshot to the one it
 * sends, every snapshot between travels and must still exist. (A step that starts later plans
 * with what is left: it waits for a pruning under way, `Pruner.idle`.) A replica that lags
 * does not pin the snapshots after its base: its next step sends the ones the grid kept.
 */
export function sourcePrunePlan(input: SourcePruneInput): string[] {
  const { snapshots, grid, replicas, running } = input;
  if (replicas.some((r) => r === null) || running.some((r) => r.guids === null)) return [];
  const txg = new Map(snapshots.map((s) => [s.snapshot, s.createtxg]));
  const ranges = running.map((r) => {
    const base = newestCommon(snapshots, r.guids!);
    // No common snapshot: a whole send of that one snapshot, no range.
    return { from: base?.createtxg ?? (txg.get(r.sending) ?? Infinity) - 1, to: txg.get(r.sending) ?? Infinity };
  });
  return snapshotsToPruneByGrid({ snapshots, grid, partners: replicas as ReadonlyArray<ReadonlySet<string>> }).filter((name) => {
    const t = txg.get(name) ?? Infinity;
    return !ranges.some((r) => t > r.from && t <= r.to);
  });
}

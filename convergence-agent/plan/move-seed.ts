/**
 * The base of a move's first round to a node that holds no copy of a replicated dataset
 * (replication/DESIGN.md "Moves", "A move to a node with no copy"). Pure: snapshots and what
 * the primary knows of its replicas are inputs.
 *
 * A full send of the move's own snapshot alone would leave the new primary sharing nothing
 * with the replicas: after the handoff each would be reported diverged and need a full reseed.
 * Instead the round first sends, whole, a snapshot the primary holds already — the oldest of
 * the replicas' newest common snapshots — and then `-I` from it to the move's snapshot: every
 * snapshot in between travels too, so each replica's newest common snapshot is on the new
 * primary and its next step from there is an incremental.
 *
 * Why the oldest of the newest-common ones and not the newest snapshot every replica holds:
 * a replica's own grid may have pruned older snapshots, so a snapshot common to all may not
 * exist, while `-I` from the oldest newest-common one carries every other replica's.
 */
import type { ZfsSnapshotInfo } from '../zfs/types.ts';

export type MoveSeed =
  /** Send `snapshot` (an existing snapshot of the primary) whole first; the round then sends `-I` from it. */
  | { kind: 'seed'; snapshot: string; guid: string }
  | { kind: 'none'; reason: MoveSeedSkip };

export type MoveSeedSkip =
  /** The target holds snapshots of the dataset: the engine plans from them by guid. */
  | 'target-has-copy'
  /** The dataset has no replica besides the target: nobody to stay common with. */
  | 'no-replicas'
  /** No replica's snapshots are known (none listed, none replicated since this agent started). */
  | 'replicas-unknown'
  /** No known replica shares a snapshot with the primary (each is diverged or still seeding). */
  | 'nothing-in-common';

export interface MoveSeedInput {
  /** The primary's drover snapshots of the dataset, any order. */
  source: readonly ZfsSnapshotInfo[];
  /** The target's drover snapshots of the dataset; [] when it has no copy. */
  target: readonly ZfsSnapshotInfo[];
  /** The guids each replica other than the target holds; null for one whose snapshots are not known. */
  replicas: ReadonlyArray<ReadonlySet<string> | null>;
}

/** Which existing snapshot, if any, to send whole before a move's first round. */
export function planMoveSeed(input: MoveSeedInput): MoveSeed {
  if (input.target.length > 0) return { kind: 'none', reason: 'target-has-copy' };
  if (input.replicas.length === 0) return { kind: 'none', reason: 'no-replicas' };
  const known = input.replicas.filter((r): r is ReadonlySet<string> => r !== null);
  if (known.length === 0) return { kind: 'none', reason: 'replicas-unknown' };
  let seed: ZfsSnapshotInfo | null = null;
  for (const guids of known) {
    const common = newestWithGuid(input.source, guids);
    // A replica that shares nothing with the primary is diverged already: the move cannot help it.
    if (common === null) continue;
    if (seed === null || common.createtxg < seed.createtxg) seed = common;
  }
  if (seed === null) return { kind: 'none', reason: 'nothing-in-common' };
  return { kind: 'seed', snapshot: seed.snapshot, guid: seed.guid };
}

function newestWithGuid(snapshots: readonly ZfsSnapshotInfo[], guids: ReadonlySet<string>): ZfsSnapshotInfo | null {
  let best: ZfsSnapshotInfo | null = null;
  for (const s of snapshots) if (guids.has(s.guid) && (best === null || s.createtxg > best.createtxg)) best = s;
  return best;
}

/**
 * What one replication step sends, decided by guid, never by name (zrepl's
 * `IncrementalPath`; names can repeat after a re-create, guids cannot). Pure.
 *
 * The base is the newest target snapshot whose guid the source also has. It must be the
 * target's *latest* snapshot; otherwise the target diverged (zfs-fuse sometimes accepts such
 * a stream anyway, so this check is ours, not zfs's).
 */
import { DroverError } from '#common/errors.ts';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';

export type StepPlan =
  | { kind: 'full'; snapshot: ZfsSnapshotInfo }
  | { kind: 'incremental'; snapshot: ZfsSnapshotInfo; base: ZfsSnapshotInfo }
  /** The target already has `snapshot` as its latest: nothing to send. */
  | { kind: 'up-to-date'; snapshot: ZfsSnapshotInfo }
  /** The target has snapshots after the newest common one (or before the new one, unknown to the source). */
  | { kind: 'diverged'; snapshot: ZfsSnapshotInfo; base: ZfsSnapshotInfo; targetNewer: ZfsSnapshotInfo[] }
  /** The target dataset exists but shares no snapshot with the source. */
  | { kind: 'no-common'; snapshot: ZfsSnapshotInfo; targetNewer: ZfsSnapshotInfo[] };

/**
 * @param source  the source's snapshots (any order), including `snapshotName`
 * @param target  the target's snapshots, or null when the target dataset does not exist
 */
export function planStep(source: readonly ZfsSnapshotInfo[], target: readonly ZfsSnapshotInfo[] | null, snapshotName: string): StepPlan {
  const bySource = [...source].sort((a, b) => a.createtxg - b.createtxg);
  const snapshot = bySource.find((s) => s.snapshot === snapshotName);
  if (!snapshot) {
    throw new DroverError('DROVER_TRANSFER_NO_SNAPSHOT', `snapshot ${snapshotName} is not on the source`, { detail: { snapshotName } });
  }
  if (target === null) return { kind: 'full', snapshot };

  const byTarget = [...target].sort((a, b) => a.createtxg - b.createtxg);
  const sourceGuids = new Map(bySource.map((s) => [s.guid, s]));
  const latest = byTarget.at(-1);
  if (latest?.guid === snapshot.guid) return { kind: 'up-to-date', snapshot };

  let common: ZfsSnapshotInfo | undefined;
  for (let i = byTarget.length - 1; i >= 0; i--) {
    const found = sourceGuids.get(byTarget[i]!.guid);
    // A common snapshot newer than the one being sent is no base for it.
    if (found && found.createtxg < snapshot.createtxg) {
      common = found;
      break;
    }
  }
  if (!common) {
    return { kind: 'no-common', snapshot, targetNewer: byTarget };
  }
  const commonGuid = common.guid;
  const commonIndex = byTarget.findIndex((t) => t.guid === commonGuid);
  const after = byTarget.slice(commonIndex + 1);
  if (after.length > 0) return { kind: 'diverged', snapshot, base: common, targetNewer: after };
  return { kind: 'incremental', snapshot, base: common };
}

/** The DROVER_ZFS_DIVERGED / DROVER_ZFS_NO_COMMON_SNAPSHOT error for a plan, naming the snapshots. */
export function divergenceError(plan: Extract<StepPlan, { kind: 'diverged' | 'no-common' }>, where: { datasetId: string; peer: string }): DroverError {
  const targetLatest = plan.targetNewer.at(-1);
  if (plan.kind === 'no-common') {
    return new DroverError(
      'DROVER_ZFS_NO_COMMON_SNAPSHOT',
      `dataset ${where.datasetId} on ${where.peer} shares no snapshot with the source` +
        (targetLatest ? ` (its latest is ${targetLatest.snapshot}, guid ${targetLatest.guid})` : ' (it has no snapshot)') +
        `; cannot send ${plan.snapshot.snapshot}`,
      { detail: { ...where, snapshot: plan.snapshot.snapshot, targetSnapshots: plan.targetNewer.map((s) => s.snapshot) } },
    );
  }
  return new DroverError(
    'DROVER_ZFS_DIVERGED',
    `dataset ${where.datasetId} on ${where.peer} diverged: its latest snapshot ${targetLatest?.snapshot} (guid ${targetLatest?.guid}) ` +
      `is newer than the newest common snapshot ${plan.base.snapshot} (guid ${plan.base.guid}); refusing to send ${plan.snapshot.snapshot}`,
    {
      detail: {
        ...where,
        commonSnapshot: plan.base.snapshot,
        targetSnapshot: targetLatest?.snapshot,
        targetNewer: plan.targetNewer.map((s) => s.snapshot),
        snapshot: plan.snapshot.snapshot,
      },
    },
  );
}

/**
 * Which drover snapshots to destroy after a step: all but the newest `keep`, never a held
 * one, never `protect` (the new base). Oldest first, one destroy each. Pure.
 */
export function snapshotsToPrune(snapshots: readonly ZfsSnapshotInfo[], keep: number, protect: readonly string[]): ZfsSnapshotInfo[] {
  const sorted = [...snapshots].sort((a, b) => a.createtxg - b.createtxg);
  const kept = new Set(sorted.slice(Math.max(0, sorted.length - Math.max(1, keep))).map((s) => s.snapshot));
  return sorted.filter((s) => !kept.has(s.snapshot) && s.userrefs === 0 && !protect.includes(s.snapshot));
}

/**
 * Hold bookkeeping of a step, and recovery from the journal of a step that died (the agent
 * was killed, the machine rebooted). Recovery is idempotent: running it twice, or after a
 * step that had in fact finished, is harmless.
 *
 * Holds (fixed tags, names.ts HOLD_TAGS): `drover-step` on the base, on both sides, while a
 * step runs; `drover-base` on the newest snapshot
 * both sides share, moved forward after each step, so pruning never removes the next base.
 */
import { DroverError, toDroverError } from '#common/errors.ts';
import type { Clock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import { HOLD_TAGS } from '../zfs/names.ts';
import type { ZfsStore } from '../zfs/zfs.ts';
import type { StepJournal, StepRecord } from './journal.ts';
import type { PeerStep, ReplicateResult, StepHoldTags } from './types.ts';

/** The migration's tags: the fixed `drover-base` / `drover-step` on both sides. */
export const FIXED_HOLD_TAGS: StepHoldTags = { source: HOLD_TAGS, target: HOLD_TAGS };

/**
 * After a step: `drover-base` moves from `base` to `snapshot` on both sides, and the step
 * holds go. Each hold and release is a txg sync on zfs-fuse, so only the known ones are
 * touched, both sides in parallel.
 */
export async function settleHolds(store: ZfsStore, step: PeerStep, datasetId: string, snapshot: string, base: string | null, tags: StepHoldTags = FIXED_HOLD_TAGS, stepHolds = true): Promise<void> {
  // The new base is held before the old one is let go, on each side; the two releases of the
  // old base are independent of each other (one command each, run side by side). With no
  // step hold taken (`stepHolds` false: the journal says so), only the base tag moves.
  const source = async (): Promise<void> => {
    await store.hold(datasetId, snapshot, tags.source.base);
    if (base && base !== snapshot) await Promise.all([...(stepHolds ? [store.release(datasetId, base, tags.source.step)] : []), store.release(datasetId, base, tags.source.base)]);
  };
  const target = async (): Promise<void> => {
    await step.hold(snapshot, tags.target.base);
    if (base && base !== snapshot) await Promise.all([...(stepHolds ? [step.release(base, tags.target.step)] : []), step.release(base, tags.target.base)]);
  };
  await Promise.all([source(), target()]);
}

/** Drops the step holds of a failed step (best effort: a failure is logged, recovery retries it). */
export async function releaseStepHolds(
  store: ZfsStore,
  step: PeerStep,
  datasetId: string,
  snapshot: string,
  base: string | null,
  log: Logger,
  tags: StepHoldTags = FIXED_HOLD_TAGS,
): Promise<void> {
  const jobs: Array<Promise<void>> = [];
  if (base) jobs.push(store.release(datasetId, base, tags.source.step), step.release(base, tags.target.step));
  void snapshot;
  for (const result of await Promise.allSettled(jobs)) {
    if (result.status === 'rejected') log.warn({ err: toDroverError(result.reason), datasetId }, 'releasing step holds failed');
  }
}

export type Recovery =
  /** The dead step's stream had arrived: its bookkeeping is now done. */
  | { kind: 'completed'; result: ReplicateResult }
  /** Send the dead step's snapshot again (it is still on the source). */
  | { kind: 'reuse'; record: StepRecord }
  /** Resume the partial receive with its token (OpenZFS). */
  | { kind: 'resume'; record: StepRecord; token: string }
  /** Nothing to finish; leftovers removed. */
  | { kind: 'clean' };

export interface RecoverInput {
  store: ZfsStore;
  step: PeerStep;
  journal: StepJournal;
  record: StepRecord;
  resumable: boolean;
  /** The snapshot the caller asks for now, if any. */
  requested: string | undefined;
  log: Logger;
  clock: Clock;
}

/**
 * The dead sender's full receive may still be running on the peer (over ssh nothing tells
 * the peer's `zfs receive` its sender died until the connection is torn down); meanwhile
 * zfs-fuse shows the new dataset without snapshots. Wait for it to finish or vanish.
 */
async function waitForOrphanReceive(step: PeerStep, record: StepRecord, clock: Clock, timeoutMs = 60_000): Promise<void> {
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    if ((await step.getDataset()) === null) return;
    const snapshots = await step.listSnapshots();
    if (snapshots.length > 0) return;
    if (clock.now() > deadline) {
      throw new DroverError('DROVER_TRANSFER_BUSY', `a receive of ${record.datasetId} still seems to run on ${record.peerId}`, {
        retryable: true,
        detail: { datasetId: record.datasetId, peer: record.peerId },
      });
    }
    await clock.sleep(1000);
  }
}

export async function recoverStep(input: RecoverInput): Promise<Recovery> {
  const { store, step, journal, record, requested, log } = input;
  const { datasetId, peerId } = record;
  log.info({ datasetId, peer: peerId, snapshot: record.snapshot, phase: record.phase, pid: record.pid }, 'unfinished step found in the journal');
  const tags = record.holdTags ?? FIXED_HOLD_TAGS;
  await releaseStepHolds(store, step, datasetId, record.snapshot, record.base, log, tags);

  if (record.phase === 'sending' && record.base === null) await waitForOrphanReceive(step, record, input.clock);

  const wanted = requested === undefined || requested === record.snapshot;
  const onTarget = (await step.listSnapshots()).some((s) => s.guid === record.snapshotGuid);
  const onSource = (await store.listSnapshots(datasetId)).find((s) => s.snapshot === record.snapshot && s.guid === record.snapshotGuid);
  if (onTarget && !onSource) {
    // The peer received it but the source no longer has it (destroyed by hand, or by a step
    // that wrongly took it for its own): there is nothing to hold on the source, and holding
    // it there would fail at every step for ever. The journal goes; the next plan, by guid,
    // decides what the peer's copy is (it has a snapshot the source lacks: diverged).
    log.warn({ datasetId, peer: peerId, snapshot: record.snapshot }, "the unfinished step's snapshot reached the peer but is gone from the source");
    await journal.clear(peerId, datasetId);
    return { kind: 'clean' };
  }
  if (onTarget) {
    await settleHolds(store, step, datasetId, record.snapshot, record.base, tags);
    await journal.clear(peerId, datasetId);
    if (wanted) {
      return {
        kind: 'completed',
        result: { snapshot: record.snapshot, guid: record.snapshotGuid, bytes: 0, incremental: record.base !== null, baseSnapshot: record.base, resumed: true },
      };
    }
    return { kind: 'clean' };
  }

  if (input.resumable && onSource && wanted) {
    const token = await step.resumeToken();
    if (token) return { kind: 'resume', record, token };
  }
  await step.abortResume();
  if (onSource && wanted) return { kind: 'reuse', record };
  if (onSource && record.ownSnapshot === true) {
    // The caller wants another snapshot: the dead step's own one is a leftover (one it was
    // given belongs to its caller, another replica's step may be sending it).
    await store.destroySnapshot(datasetId, record.snapshot).catch((err: unknown) => {
      log.warn({ err: toDroverError(err), datasetId, snapshot: record.snapshot }, 'could not remove the snapshot of an unfinished step');
    });
  }
  await journal.clear(peerId, datasetId);
  return { kind: 'clean' };
}

/**
 * What a receiver reports with a receive's verdict: the snapshot the dataset holds now, read
 * on the receiving side right after `zfs receive` exited 0 (docs/DESIGN.md §41). The sender
 * compares its guid with the snapshot it sent instead of asking the peer for its listing in
 * one more request: the same check (the guid read from the target's own zfs), one round trip
 * less. One definition for every receiver (drover-receive's one-shot and resident verbs, the
 * tls server through LocalPeer) and every sender.
 *
 * zfs cannot give the guid without a command of its own: `zfs receive -v` names the snapshot
 * but not its guid, and the stream's header (`drr_toguid`) only repeats what the sender sent.
 */
import { z } from 'zod';
import { toDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { ZfsStore } from '../zfs/zfs.ts';

export const ReceivedSnapshot = z.object({
  /** The part after `@`. */
  snapshot: z.string().min(1).max(300),
  /** Decimal, as zfs prints it (64-bit: a string). */
  guid: z.string().regex(/^[0-9]{1,20}$/),
});
export type ReceivedSnapshot = z.infer<typeof ReceivedSnapshot>;

/**
 * The receiving side, once a receive into `datasetId` exited 0 (and a new replica was
 * settled): its newest drover snapshot — the one just received. Null when it cannot be read
 * (logged); the verdict is still a success, and the sender then lists the snapshots itself.
 * Never throws.
 */
export async function readReceived(store: Pick<ZfsStore, 'listSnapshots'>, datasetId: string, log?: Logger): Promise<ReceivedSnapshot | null> {
  try {
    const newest = (await store.listSnapshots(datasetId)).at(-1);
    return newest === undefined ? null : { snapshot: newest.snapshot, guid: newest.guid };
  } catch (err) {
    log?.warn({ err: toDroverError(err), datasetId }, 'received snapshot not read');
    return null;
  }
}

/**
 * A successful verdict's value as the sender reads it: the received snapshot, or null from a
 * receiver that does not report it (an older one answers null; anything malformed counts the
 * same, and the sender falls back to listing the peer's snapshots).
 */
export function receivedOf(value: unknown): ReceivedSnapshot | null {
  const parsed = ReceivedSnapshot.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/**
 * The step journal: one small JSON file per (peer, dataset) in the agent's state dir, written
 * atomically (temp file, fsync, rename, directory fsync) before each phase of a step, removed
 * when the step is done. After a crash (kill -9 of the sender) the next step reads it and
 * finishes or cleans up what the dead one left: holds, a partial receive, a stray snapshot.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { DroverError } from '#common/errors.ts';

export const StepRecord = z.object({
  version: z.literal(1),
  datasetId: z.string(),
  peerId: z.string(),
  /** snapshotted: the snapshot exists; sending: holds were taken and the stream started. */
  phase: z.enum(['snapshotted', 'sending']),
  snapshot: z.string(),
  snapshotGuid: z.string(),
  base: z.string().nullable(),
  /** Epoch ms. */
  startedAt: z.number(),
  /** Process id of the writer, for logs. */
  pid: z.number(),
  /**
   * The step's hold tags when they are not the fixed HOLD_TAGS (continuous replication's
   * per-replica tags on the source), so recovery releases the right ones.
   */
  holdTags: z.object({ source: z.object({ base: z.string(), step: z.string() }), target: z.object({ base: z.string(), step: z.string() }) }).optional(),
  /**
   * True when the step took its snapshot itself. A snapshot it was given that already existed
   * (continuous replication's, shared by the replicas' steps) is not its own: neither the
   * failed step nor recovery destroys it. Absent (older journals): taken as not its own.
   */
  ownSnapshot: z.boolean().optional(),
  /**
   * False when no step hold (`drover-step`) can be on the base: this call of the step took
   * none (its base was held by the base tags already) and found no journal of an earlier one.
   * Settling then skips the step tags' releases. Absent (older journals, or holds taken): true.
   */
  stepHolds: z.boolean().optional(),
});
export type StepRecord = z.infer<typeof StepRecord>;

export class StepJournal {
  constructor(private readonly dir: string) {}

  private fileOf(peerId: string, datasetId: string): string {
    const safePeer = peerId.replace(/[^A-Za-z0-9_.-]/g, '_');
    const safeDataset = datasetId.replace(/[^A-Za-z0-9_.-]/g, '_');
    return join(this.dir, `${safePeer}--${safeDataset}.json`);
  }

  /** The record of an unfinished step, or null. A corrupt file is reported, not ignored. */
  async read(peerId: string, datasetId: string): Promise<StepRecord | null> {
    let text: string;
    try {
      text = await readFile(this.fileOf(peerId, datasetId), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const parsed = StepRecord.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new DroverError('DROVER_TRANSFER_JOURNAL_CORRUPT', `step journal ${this.fileOf(peerId, datasetId)} is not valid`, {
        detail: { issues: parsed.error.issues.map((i) => i.path.join('.')) },
      });
    }
    return parsed.data;
  }

  /** Replaces the record atomically: a crash leaves either the old or the new one. */
  async write(record: StepRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = this.fileOf(record.peerId, record.datasetId);
    const temp = `${file}.${process.pid}.tmp`;
    const handle = await open(temp, 'w', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(record)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
    await syncDir(this.dir);
  }

  /** Removes the record (the step is done or cleaned up). Idempotent. */
  async clear(peerId: string, datasetId: string): Promise<void> {
    await rm(this.fileOf(peerId, datasetId), { force: true });
    await syncDir(this.dir).catch(() => {});
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

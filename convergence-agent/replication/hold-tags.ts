/**
 * The primary's per-replica hold tags of replication (DESIGN.md "Holds: one base per
 * replica"): recorded in the dataset's `drover:hold-tags` before their first hold, so a
 * deliberate destroy can release them, and released here when this node no longer needs them
 * (it stopped being primary, or a replica left `replicas`). Every read-modify-write of the
 * record is one at a time per dataset (the pairs of one dataset run side by side).
 */
import type { Logger } from '#common/log.ts';
import { replicaHoldTags } from '../zfs/names.ts';
import type { ReplicationStore } from './scheduler.ts';

export class HoldTagBook {
  /** Datasets whose per-replica hold tags may need releasing here (not primary, or replicas dropped). */
  private readonly cleanups = new Map<string, Set<string> | 'all'>();
  private readonly writes = new Map<string, Promise<void>>();

  constructor(private readonly deps: { store: ReplicationStore; log: Logger }) {}

  /** Every tag of `datasetId` is to be released (this node is not its primary). */
  releaseAll(datasetId: string): void {
    this.cleanups.set(datasetId, 'all');
  }

  /** The tags of `replica` (no longer a replica of `datasetId`) are to be released. */
  releaseReplica(datasetId: string, replica: string): void {
    const set = this.cleanups.get(datasetId);
    if (set !== 'all') this.cleanups.set(datasetId, new Set([...(set ?? []), replica]));
  }

  /** Read-modify-write of the recorded tags, one at a time per dataset. */
  record(datasetId: string, change: (recorded: string[]) => string[]): Promise<void> {
    const previous = this.writes.get(datasetId) ?? Promise.resolve();
    const next = previous
      .catch(() => {})
      .then(async () => {
        const recorded = await this.deps.store.recordedHoldTags(datasetId);
        await this.deps.store.recordHoldTags(datasetId, change(recorded));
      });
    this.writes.set(datasetId, next);
    void next
      .finally(() => {
        if (this.writes.get(datasetId) === next) this.writes.delete(datasetId);
      })
      .catch(() => {});
    return next;
  }

  /** Releases the tags asked for (one release per held snapshot and tag), then forgets them. */
  async runCleanups(): Promise<void> {
    const { store, log } = this.deps;
    for (const [datasetId, which] of [...this.cleanups]) {
      this.cleanups.delete(datasetId);
      const recorded = await store.recordedHoldTags(datasetId);
      if (recorded.length === 0) continue;
      const drop = which === 'all' ? recorded : recorded.filter((t) => [...which].some((r) => Object.values(replicaHoldTags(r)).includes(t)));
      if (drop.length === 0) continue;
      for (const s of await store.listSnapshots(datasetId)) {
        if (s.userrefs === 0) continue;
        for (const tag of drop) await store.release(datasetId, s.snapshot, tag);
      }
      await this.record(datasetId, (now) => now.filter((t) => !drop.includes(t)));
      log.info({ datasetId, released: drop }, 'replication holds released');
    }
  }
}

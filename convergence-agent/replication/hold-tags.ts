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
  /**
   * What this book last read or wrote as a dataset's record: a step whose tags are in it
   * records nothing (two `zfs get` less before every step). Forgotten whenever this node is
   * not the dataset's primary, so a new term as primary reads the record again.
   */
  private readonly known = new Map<string, ReadonlySet<string>>();
  /** Datasets not primary here whose tags were released already (once per such spell, not every pass). */
  private readonly released = new Set<string>();

  constructor(private readonly deps: { store: ReplicationStore; log: Logger }) {}

  /** Every tag of `datasetId` is to be released (this node is not its primary): once, until it is primary here again. */
  releaseAll(datasetId: string): void {
    this.known.delete(datasetId);
    if (this.released.has(datasetId)) return;
    this.released.add(datasetId);
    this.cleanups.set(datasetId, 'all');
  }

  /** This node is the primary of `datasetId` (again): a later spell as a copy releases its tags afresh. */
  primaryHere(datasetId: string): void {
    this.released.delete(datasetId);
  }

  /** Records `tags` for `datasetId` unless this book knows they are recorded already. */
  async ensure(datasetId: string, tags: readonly string[]): Promise<void> {
    const known = this.known.get(datasetId);
    if (known && tags.every((t) => known.has(t))) return;
    await this.record(datasetId, (recorded) => [...recorded, ...tags]);
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
        this.known.delete(datasetId);
        const recorded = await this.deps.store.recordedHoldTags(datasetId);
        const wanted = [...new Set(change(recorded))].sort();
        if (wanted.join(',') !== [...recorded].sort().join(',')) await this.deps.store.recordHoldTags(datasetId, wanted);
        this.known.set(datasetId, new Set(wanted));
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
      const held = (await store.listSnapshots(datasetId)).filter((s) => s.userrefs > 0).map((s) => s.snapshot);
      for (const tag of drop) {
        // One `zfs release` per tag for every held snapshot where the store can; else one each.
        if (store.releaseMany) await store.releaseMany(datasetId, held, tag);
        else for (const s of held) await store.release(datasetId, s, tag);
      }
      await this.record(datasetId, (now) => now.filter((t) => !drop.includes(t)));
      log.info({ datasetId, released: drop }, 'replication holds released');
    }
  }
}

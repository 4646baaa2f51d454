/**
 * One snapshot per dataset per interval, shared by its replicas' steps (DESIGN.md "The
 * loop"), and the snapshots running steps send (the primary's pruning keeps them). The
 * scheduler takes the interval's snapshot here, before any step sends it, so it belongs to no
 * step: a failing step never destroys it under another replica's send.
 */
import type { Clock } from '#common/clock.ts';
import { newSnapshotName } from '../transfer/snapshot-name.ts';
import type { ReplicationStore } from './scheduler.ts';

interface Taken {
  name: string;
  at: number;
  ready: Promise<unknown>;
  delivered: boolean;
}

export class IntervalSnapshots {
  /** The snapshot last taken per dataset, when, and its `zfs snapshot`. */
  private readonly taken = new Map<string, Taken>();
  /** Per dataset, the snapshot each running step sends (pair key → name). */
  private readonly sending = new Map<string, Map<string, string>>();

  constructor(private readonly deps: { store: ReplicationStore; clock: Clock }) {}

  /**
   * The snapshot a step of `datasetId` that began at `began` sends, and the promise of its
   * `zfs snapshot` (await it before sending). `failing`: the pair's last step failed.
   */
  async choose(datasetId: string, began: number, intervalMs: number, failing: boolean): Promise<{ name: string; ready: Promise<unknown> }> {
    const { store, clock } = this.deps;
    const shared = this.taken.get(datasetId);
    // A step reuses the one another replica's step took within the interval.
    if (shared && began - shared.at < intervalMs) return { name: shared.name, ready: shared.ready };
    if (shared && !shared.delivered && failing) {
      // No replica received the last one (all failing: full pools, divergence): send it
      // again rather than pile up a snapshot a interval that nothing prunes (pruning runs
      // after a step that succeeded). Taken again if it went meanwhile. Not for a pair
      // whose steps were only cut short (a move, a policy change): its old snapshot's age
      // would be the replica's lag once received (bench:replication, 2026-12-06: 43 s).
      shared.ready = store.createSnapshot(datasetId, shared.name);
      shared.ready.catch(() => {});
      return { name: shared.name, ready: shared.ready };
    }
    // Skip-when-unchanged: nothing written since the newest snapshot → send that one (a no-op
    // when the replica has it). Unknown (zfs-fuse has no `written`) → a new snapshot.
    if ((await store.written(datasetId)) === 0) {
      const newest = (await store.listSnapshots(datasetId)).sort((a, b) => a.createtxg - b.createtxg).at(-1);
      if (newest) return { name: newest.snapshot, ready: Promise.resolve() };
    }
    const name = newSnapshotName(new Date(clock.now()));
    const ready = store.createSnapshot(datasetId, name);
    // A failed `zfs snapshot` is not shared: the next replica's step takes its own.
    const entry: Taken = { name, at: began, ready, delivered: false };
    this.taken.set(datasetId, entry);
    ready.catch(() => {
      if (this.taken.get(datasetId) === entry) this.taken.delete(datasetId);
    });
    return { name, ready };
  }

  /** A replica received `snapshot`: the next interval takes a new one. */
  delivered(datasetId: string, snapshot: string): void {
    const entry = this.taken.get(datasetId);
    if (entry?.name === snapshot) entry.delivered = true;
  }

  /** Records (or, with null, forgets) the snapshot the running step of pair `key` sends. */
  markSending(datasetId: string, key: string, snapshot: string | null): void {
    let names = this.sending.get(datasetId);
    if (snapshot !== null) {
      if (!names) this.sending.set(datasetId, (names = new Map()));
      names.set(key, snapshot);
      return;
    }
    names?.delete(key);
    if (names?.size === 0) this.sending.delete(datasetId);
  }

  /** What running steps of `datasetId` send, but the one of pair `except` (null: every one). */
  inFlight(datasetId: string, except: string | null): Set<string> {
    return new Set([...(this.sending.get(datasetId) ?? [])].filter(([key]) => key !== except).map(([, name]) => name));
  }
}

/**
 * One snapshot per dataset per interval, shared by its replicas' steps (DESIGN.md "The
 * loop"), and the snapshots running steps send (the primary's pruning keeps them). The
 * scheduler takes the interval's snapshot here, before any step sends it, so it belongs to no
 * step: a failing step never destroys it under another replica's send.
 */
import type { Clock } from '#common/clock.ts';
import { newSnapshotName } from '../transfer/snapshot-name.ts';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';
import type { ReplicationStore } from './scheduler.ts';

/** The longest a new snapshot waits for the dataset's running streams to end: two intervals, at most this. */
const QUIET_WAIT_MS = 5_000;

interface Taken {
  name: string;
  at: number;
  ready: Promise<unknown>;
  delivered: boolean;
  /** Pairs it was taken ahead for (`prefetch`): their next step sends it, however old it is by then. */
  reserved: Set<string>;
  /** Pairs whose steps chose it: one whose step succeeded never gets it again as a new interval's. */
  chosenBy: Set<string>;
}

export class IntervalSnapshots {
  /** The snapshot last taken per dataset, when, and its `zfs snapshot`. */
  private readonly taken = new Map<string, Taken>();
  /** Per dataset, the snapshot each running step sends (pair key → name). */
  private readonly sending = new Map<string, Map<string, string>>();
  /** Per dataset, the choice or prefetch under way. */
  private readonly deciding = new Map<string, Promise<unknown>>();
  /** Per dataset, the pairs whose stream runs (inside the engine's step), and who waits for none. */
  private readonly streams = new Map<string, Set<string>>();
  private readonly quietWaiters = new Map<string, Array<() => void>>();
  /** Per dataset, the listing the interval's steps share (`listing`): of which snapshot, when. */
  private readonly listings = new Map<string, { name: string; at: number; snapshots: Promise<ZfsSnapshotInfo[]> }>();

  constructor(
    private readonly deps: {
      store: ReplicationStore;
      clock: Clock;
      /** Runs a new interval snapshot's `zfs snapshot` (the freeze of docs/DESIGN.md §47, where the dataset's policy asks); else it runs as is. */
      freeze?: (datasetId: string, snapshot: () => Promise<unknown>) => Promise<unknown>;
    },
  ) {}

  /**
   * The snapshot a step of `datasetId` that began at `began` sends, and the promise of its
   * `zfs snapshot` (await it before sending). `failing`: the pair's last step failed.
   */
  choose(datasetId: string, began: number, intervalMs: number, failing: boolean, pair = '', signal?: AbortSignal): Promise<{ name: string; ready: Promise<unknown> }> {
    return this.oneAtATime(datasetId, () => this.decide(datasetId, began, intervalMs, failing, pair, signal));
  }

  /** Runs `fn` after the dataset's previous choice or prefetch: two replicas' steps never both take one. */
  private oneAtATime<T>(datasetId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.deciding.get(datasetId) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(fn);
    const tracked = next.catch(() => {});
    this.deciding.set(datasetId, tracked);
    void tracked.finally(() => {
      if (this.deciding.get(datasetId) === tracked) this.deciding.delete(datasetId);
    });
    return next;
  }

  private async decide(datasetId: string, began: number, intervalMs: number, failing: boolean, pair: string, signal?: AbortSignal): Promise<{ name: string; ready: Promise<unknown> }> {
    const { store } = this.deps;
    const shared = this.taken.get(datasetId);
    // A step reuses the one another replica's step took within the interval, or the one taken
    // ahead for it while its last step settled (`prefetch`): the newest either way.
    const reserved = shared?.reserved.delete(pair) === true;
    if (shared && (reserved || (began - shared.at < intervalMs && (failing || !shared.chosenBy.has(pair))))) {
      shared.chosenBy.add(pair);
      return { name: shared.name, ready: shared.ready };
    }
    if (shared && !shared.delivered && failing) {
      // No replica received the last one (all failing: full pools, divergence): send it
      // again rather than pile up a snapshot a interval that nothing prunes (pruning runs
      // after a step that succeeded). Taken again if it went meanwhile. Not for a pair
      // whose steps were only cut short (a move, a policy change): its old snapshot's age
      // would be the replica's lag once received (bench:replication, 2026-12-06: 43 s).
      this.forgetListing(datasetId);
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
    // Shared by the interval it was decided in (`began`); named when it is taken, after the wait.
    await this.quiet(datasetId, intervalMs, signal);
    const entry = this.take(datasetId, began);
    entry.chosenBy.add(pair);
    return { name: entry.name, ready: entry.ready };
  }

  /**
   * The dataset's snapshots, listed once for the steps that send `name` within an interval
   * of the first one asking (the replicas of one dataset send one snapshot per interval, and
   * each step's plan used to list the primary itself). Listed when first asked, so after that
   * snapshot's `zfs snapshot` and after the primary's pruning the step waited for; forgotten
   * when pruning starts or ends (`forgetListing`) or the snapshot is taken again. A step whose
   * listing lacks its snapshot, or that retries, lists itself (ReplicateOptions.sourceListing).
   */
  listing(datasetId: string, name: string, intervalMs: number): Promise<ZfsSnapshotInfo[]> {
    const now = this.deps.clock.now();
    const memo = this.listings.get(datasetId);
    if (memo && memo.name === name && now - memo.at < intervalMs) return memo.snapshots;
    const snapshots = this.deps.store.listSnapshots(datasetId);
    const entry = { name, at: now, snapshots };
    this.listings.set(datasetId, entry);
    // A failed listing is not shared: the next step lists again.
    snapshots.catch(() => {
      if (this.listings.get(datasetId) === entry) this.listings.delete(datasetId);
    });
    return snapshots;
  }

  /** The dataset's snapshots may have changed otherwise than by a new interval's snapshot: the next step lists. */
  forgetListing(datasetId: string): void {
    this.listings.delete(datasetId);
  }

  /** Resolves once no choice, prefetch or `zfs snapshot` started here runs (the scheduler's stop). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.deciding.values()]);
    await Promise.allSettled([...this.taken.values()].map((t) => t.ready));
  }

  /** Pair `key`'s stream of `datasetId` begins (true) or ended (false). */
  streaming(datasetId: string, key: string, on: boolean): void {
    let set = this.streams.get(datasetId);
    if (on) {
      if (!set) this.streams.set(datasetId, (set = new Set()));
      set.add(key);
      return;
    }
    set?.delete(key);
    if (set && set.size > 0) return;
    this.streams.delete(datasetId);
    for (const wake of this.quietWaiters.get(datasetId) ?? []) wake();
    this.quietWaiters.delete(datasetId);
  }

  /**
   * Waits until no stream of `datasetId` runs, at most two intervals or 5 s (a replica that
   * streams slowly or hangs delays the others' snapshots by that much): on zfs-fuse a
   * `zfs snapshot` of a dataset during its `zfs send` made that step's stream 2–6 times
   * longer (bench/RESULTS.md, 2026-12-07), so the next snapshot is taken between streams —
   * which also lines a dataset's replicas up on one snapshot and one stream phase.
   */
  private async quiet(datasetId: string, intervalMs: number, signal?: AbortSignal): Promise<void> {
    if (!this.streams.has(datasetId) || signal?.aborted) return;
    const timeout = new AbortController();
    const woken = new Promise<void>((resolve) => {
      const list = this.quietWaiters.get(datasetId) ?? [];
      list.push(resolve);
      this.quietWaiters.set(datasetId, list);
    });
    const onAbort = (): void => timeout.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    await Promise.race([woken, this.deps.clock.sleep(Math.min(2 * intervalMs, QUIET_WAIT_MS), timeout.signal).catch(() => {})]);
    signal?.removeEventListener('abort', onAbort);
    timeout.abort();
  }

  /**
   * Takes the interval's snapshot ahead, for pair `pair` whose next step is due before its
   * current one ends (it settles holds and prunes meanwhile): the `zfs snapshot` runs beside
   * that tail instead of in front of the next step, which then sends it. Nothing when one was
   * taken within the interval (reserved for the pair instead) or when nothing was written
   * (where zfs can tell). `now` is the next step's slot on the schedule (its due time), which
   * the snapshot counts as taken in. Called only after a step that succeeded, so failing pairs never
   * pile snapshots up this way.
   */
  prefetch(datasetId: string, now: number, intervalMs: number, pair: string, signal?: AbortSignal): Promise<void> {
    return this.oneAtATime(datasetId, () => this.takeAhead(datasetId, now, intervalMs, pair, signal));
  }

  private async takeAhead(datasetId: string, now: number, intervalMs: number, pair: string, signal?: AbortSignal): Promise<void> {
    const shared = this.taken.get(datasetId);
    if (shared && now - shared.at < intervalMs) {
      shared.reserved.add(pair);
      return;
    }
    if ((await this.deps.store.written(datasetId)) === 0) return;
    await this.quiet(datasetId, intervalMs, signal);
    if (signal?.aborted) return;
    this.take(datasetId, now).reserved.add(pair);
  }

  private take(datasetId: string, at: number): Taken {
    const { store, clock } = this.deps;
    const name = newSnapshotName(new Date(clock.now()));
    // `zfs snapshot` alone where the store can: every step lists the snapshots anyway.
    const snapshot = (): Promise<unknown> => (store.takeSnapshot ? store.takeSnapshot(datasetId, name) : store.createSnapshot(datasetId, name));
    const ready = this.deps.freeze ? this.deps.freeze(datasetId, snapshot) : snapshot();
    // A failed `zfs snapshot` is not shared: the next replica's step takes its own.
    const entry: Taken = { name, at, ready, delivered: false, reserved: new Set(), chosenBy: new Set() };
    this.forgetListing(datasetId);
    this.taken.set(datasetId, entry);
    ready.catch(() => {
      if (this.taken.get(datasetId) === entry) this.taken.delete(datasetId);
    });
    return entry;
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

  /** What the running step of pair `key` sends; null when none is marked. */
  sendingBy(datasetId: string, key: string): string | null {
    return this.sending.get(datasetId)?.get(key) ?? null;
  }

  /** What running steps of `datasetId` send, but the one of pair `except` (null: every one). */
  inFlight(datasetId: string, except: string | null): Set<string> {
    return new Set([...(this.sending.get(datasetId) ?? [])].filter(([key]) => key !== except).map(([, name]) => name));
  }
}

/**
 * The replication loop on a primary's agent (DESIGN.md beside this file): for each dataset
 * primary here with a replication policy and each of its replicas, one replication step
 * every `interval_seconds`, at most `concurrency` steps at once across all pairs, a pair never
 * overlapping itself. Fed the desired view each pass (`sync`); reports each pair's lag
 * (`statuses`). Time is the Clock's; a failed step backs off but retries at least every interval.
 *
 * Safety: it never rolls a replica back (no `allowRollback`), refuses a writable target (the
 * engine does), pauses a dataset while a migration of it is unfinished, and destroys only
 * drover's replication snapshots, by the operator's grid, never the newest common ones and
 * never one a running step of another replica is sending. The interval's snapshot, shared by
 * the dataset's replicas, is taken here before their steps, so it belongs to no step: a step
 * that fails leaves it to the grid instead of destroying it under the others' feet.
 */
import { backoffDelay, type Backoff } from '#common/backoff.ts';
import type { AgentDesired } from '#common/channel.ts';
import type { Clock } from '#common/clock.ts';
import { DroverError, toDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { Node, ReplicaStatus, ReplicationPolicy } from '#common/model.ts';
import { DEFAULT_RETENTION_GRID, parseRetentionGrid, type RetentionGrid } from '#common/retention-grid.ts';
import type { PeerSource } from '../migration/peers.ts';
import type { PruneRule, ReplicateOptions, ReplicateResult } from '../transfer/types.ts';
import { newSnapshotName } from '../transfer/snapshot-name.ts';
import { HOLD_TAGS, replicaHoldTags } from '../zfs/names.ts';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';
import { replicationPruneRule, snapshotTime } from './prune.ts';

/** What the scheduler needs from the local ZFS (ZfsStore has it). */
export interface ReplicationStore {
  listSnapshots(datasetId: string): Promise<ZfsSnapshotInfo[]>;
  /** Takes `snapshot` (an existing one of that name is fine). */
  createSnapshot(datasetId: string, snapshot: string): Promise<unknown>;
  /** Bytes written since the newest snapshot; null when this zfs cannot tell. */
  written(datasetId: string): Promise<number | null>;
  recordedHoldTags(datasetId: string): Promise<string[]>;
  recordHoldTags(datasetId: string, tags: readonly string[]): Promise<void>;
  release(datasetId: string, snapshot: string, tag: string): Promise<void>;
}

export interface ReplicationDeps {
  nodeUuid: string;
  clock: Clock;
  log: Logger;
  store: ReplicationStore;
  replicate(options: ReplicateOptions): Promise<ReplicateResult>;
  peers: PeerSource;
  /** Steps running at once across all (dataset, replica) pairs. Default 4. */
  concurrency?: number;
  /** Back-off of a failing pair (capped by its interval). Default 1 s doubling to 60 s. */
  backoff?: Backoff;
  /** Called when a status changed (the loop reports sooner). */
  onChange?: () => void;
}

const DEFAULT_BACKOFF: Backoff = { initialMs: 1_000, capMs: 60_000 };
/** Longest sleep of the driver when nothing is due (it is woken by sync anyway). */
const IDLE_MS = 60_000;

interface Pair {
  key: string;
  datasetId: string;
  replica: string;
  node: Node | null;
  policy: ReplicationPolicy;
  paused: boolean;
  nextAt: number;
  running: AbortController | null;
  /** The running step itself (settles when it ended, however). */
  step: Promise<void> | null;
  failures: number;
  status: ReplicaStatus;
  /** The replica's snapshot guids after its last successful step (for the primary's pruning). */
  guids: Set<string> | null;
}

export class ReplicationScheduler {
  private readonly pairs = new Map<string, Pair>();
  private readonly concurrency: number;
  private readonly backoff: Backoff;
  private readonly stopping = new AbortController();
  private wake = new AbortController();
  private driver: Promise<void> | null = null;
  private readonly running = new Set<Promise<void>>();
  /** Datasets whose per-replica hold tags may need releasing here (not primary, or a replica dropped). */
  private readonly cleanups = new Map<string, Set<string> | 'all'>();
  private readonly tagWrites = new Map<string, Promise<void>>();
  /** The snapshot last taken per dataset, when, and its `zfs snapshot` (shared by its replicas' steps in one interval). */
  private readonly taken = new Map<string, { name: string; at: number; ready: Promise<unknown>; delivered: boolean }>();
  /** Per dataset, the snapshot each running step sends (pair key → name): pruning keeps them. */
  private readonly sending = new Map<string, Map<string, string>>();
  private grids = new Map<string, { primary: RetentionGrid; replicas: RetentionGrid }>();
  /** The replica nodes of each dataset primary here with a policy (a move to one never rolls it back). */
  private readonly replicaNodes = new Map<string, ReadonlySet<string>>();

  constructor(private readonly deps: ReplicationDeps) {
    this.concurrency = Math.max(1, deps.concurrency ?? 4);
    this.backoff = deps.backoff ?? DEFAULT_BACKOFF;
  }

  /**
   * The newest desired view: pairs appear, change, pause (a migration of the dataset is
   * unfinished) or go. Starts the driver on first use. Never throws, does no I/O itself.
   */
  sync(desired: AgentDesired | null): void {
    if (desired === null || this.stopping.signal.aborted) return;
    const { nodeUuid, clock } = this.deps;
    const now = clock.now();
    const moving = new Set(desired.migrations.filter((m) => m.phase !== 'done' && m.phase !== 'failed').flatMap((m) => m.dataset_ids));
    const wanted = new Set<string>();
    for (const d of desired.datasets) {
      if (d.deleted) continue;
      if (d.primary !== nodeUuid) {
        // A copy here that is not primary (a replica, or the source after a handoff) keeps
        // no per-replica holds of its own: they would pin its snapshots forever.
        if (!moving.has(d.dataset_id)) this.cleanups.set(d.dataset_id, 'all');
        continue;
      }
      const policy = d.replication;
      if (!policy || policy.replicas <= 0) continue;
      const grids = gridsOf(policy, this.deps.log, d.dataset_id);
      this.grids.set(d.dataset_id, grids);
      this.replicaNodes.set(d.dataset_id, new Set(d.replicas));
      for (const replica of d.replicas) {
        if (replica === nodeUuid) continue;
        const key = `${d.dataset_id}/${replica}`;
        wanted.add(key);
        let pair = this.pairs.get(key);
        if (!pair) {
          pair = {
            key,
            datasetId: d.dataset_id,
            replica,
            node: null,
            policy,
            paused: false,
            nextAt: now,
            running: null,
            step: null,
            failures: 0,
            guids: null,
            status: emptyStatus(d.dataset_id, replica),
          };
          this.pairs.set(key, pair);
        }
        pair.policy = policy;
        pair.node = desired.nodes.find((n) => n.uuid === replica) ?? null;
        const paused = moving.has(d.dataset_id);
        if (paused && !pair.paused) pair.running?.abort(new Error('a migration of the dataset began'));
        if (!paused && pair.paused) pair.nextAt = now;
        pair.paused = paused;
        pair.status.state = paused ? 'paused' : pair.status.state === 'paused' ? (pair.guids ? 'ok' : 'seeding') : pair.status.state;
      }
    }
    for (const [key, pair] of this.pairs) {
      if (wanted.has(key)) continue;
      pair.running?.abort(new Error('the replica is no longer wanted'));
      this.pairs.delete(key);
      const stillPrimary = desired.datasets.some((d) => d.dataset_id === pair.datasetId && d.primary === nodeUuid && !d.deleted);
      if (stillPrimary) {
        const set = this.cleanups.get(pair.datasetId);
        if (set !== 'all') this.cleanups.set(pair.datasetId, new Set([...(set ?? []), pair.replica]));
      }
    }
    this.driver ??= this.drive();
    this.kick();
  }

  /** Every pair where this node is primary, with its lag at `now`. */
  statuses(): ReplicaStatus[] {
    const now = this.deps.clock.now();
    return [...this.pairs.values()].map((p) => ({
      ...p.status,
      lag_seconds: p.status.newest_snapshot_created_at === null ? null : Math.max(0, (now - p.status.newest_snapshot_created_at) / 1000),
    }));
  }

  /**
   * A migration's replicate options for a dataset with a replication policy: its pruning
   * follows the grid (with every replica's newest common snapshot kept) instead of keep-N,
   * and a target that is one of its replicas is never rolled back (`allowRollback` dropped):
   * a replica that diverged (written outside drover) fails the move with
   * DROVER_ZFS_DIVERGED, naming it, instead of losing what was written there.
   */
  forMigration(options: ReplicateOptions): ReplicateOptions {
    const grids = this.grids.get(options.datasetId);
    if (!grids) return options;
    // `-I`: the move's target gets every snapshot a replica may hold (one a replica received
    // while the target's own step failed or was aborted), so after the handoff each replica's
    // newest snapshot is common with the new primary, not a divergence.
    let out: ReplicateOptions = { ...options, intermediates: true };
    if (options.allowRollback && this.replicaNodes.get(options.datasetId)?.has(options.peer.id)) {
      const { allowRollback: _dropped, ...rest } = out;
      out = rest;
    }
    if (options.prune === false) return out;
    return { ...out, prune: this.pruneRule(options.datasetId, grids, null) };
  }

  /**
   * Called before each step of a move of `datasetId` (main.ts): pauses its pairs at once (the
   * view's migration does too, in the same pass), aborts their running steps and resolves once
   * none runs. An aborted step may still finish its receive (the abort can land after the
   * stream), so the move must not plan before it ended: afterwards no replica changes until
   * the move is over, and the move's `-I` (`forMigration`) from its target's newest snapshot
   * carries every snapshot any replica holds. Rejects only when `signal` aborts.
   */
  async beforeMove(datasetId: string, signal?: AbortSignal): Promise<void> {
    const mine = (): Pair[] => [...this.pairs.values()].filter((p) => p.datasetId === datasetId);
    for (const pair of mine()) {
      if (pair.paused) continue;
      pair.paused = true;
      pair.status.state = 'paused';
      pair.running?.abort(new Error('a move of the dataset began'));
    }
    for (;;) {
      signal?.throwIfAborted();
      const steps = mine().flatMap((p) => (p.step ? [p.step] : []));
      if (steps.length === 0) return;
      this.deps.log.info({ datasetId, steps: steps.length }, 'move waits for the running replication steps of the dataset');
      await raceAbort(Promise.allSettled(steps), signal);
    }
  }

  /** Stops the driver and aborts running steps (they clean up as a failed step does). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.kick();
    for (const pair of this.pairs.values()) pair.running?.abort(new Error('the agent is stopping'));
    await this.driver;
    await Promise.allSettled([...this.running]);
  }

  /** Resolves when no step is running (tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private kick(): void {
    this.wake.abort();
  }

  private async drive(): Promise<void> {
    const { clock, log } = this.deps;
    while (!this.stopping.signal.aborted) {
      this.wake = new AbortController();
      try {
        await this.runCleanups();
      } catch (err) {
        log.warn({ err: toDroverError(err) }, 'releasing replication holds failed');
      }
      const now = clock.now();
      const pairs = [...this.pairs.values()];
      const due = pairs.filter((p) => !p.paused && p.running === null && p.nextAt <= now).sort((a, b) => a.nextAt - b.nextAt);
      let free = this.concurrency - pairs.filter((p) => p.running !== null).length;
      for (const pair of due) {
        if (free <= 0) break;
        this.start(pair);
        free -= 1;
      }
      // At the bound, only a finishing step (it kicks) can start another; otherwise every
      // idle pair is due in the future: sleep until the first of them.
      const idle = free > 0 ? pairs.filter((p) => !p.paused && p.running === null).map((p) => p.nextAt) : [];
      const next = idle.length > 0 ? Math.min(...idle) : now + IDLE_MS;
      await clock.sleep(Math.max(0, next - now), this.wake.signal);
    }
  }

  private start(pair: Pair): void {
    const abort = new AbortController();
    pair.running = abort;
    const run = this.step(pair, abort.signal).finally(() => {
      pair.running = null;
      pair.step = null;
      this.running.delete(run);
      this.kick();
      this.deps.onChange?.();
    });
    pair.step = run;
    this.running.add(run);
  }

  private async step(pair: Pair, signal: AbortSignal): Promise<void> {
    const { clock, store, log } = this.deps;
    const began = clock.now();
    const interval = pair.policy.interval_seconds * 1000;
    const where = { datasetId: pair.datasetId, replica: pair.replica };
    try {
      if (!pair.node) throw new DroverError('DROVER_NODE_NOT_FOUND', `replica node ${pair.replica} is not in the desired configuration`, { detail: where });
      const peer = await this.deps.peers.peerFor(pair.node);
      // Record the tags before the first hold with them: destroy must be able to release them.
      const tags = replicaHoldTags(pair.replica);
      await this.recordTags(pair.datasetId, (recorded) => [...recorded, tags.base, tags.step]);
      // One snapshot per dataset per interval, shared by its replicas: a step reuses the one
      // another replica's step took within the interval. Skip-when-unchanged: nothing written
      // since the newest snapshot → send that one (a no-op when the replica has it). Unknown
      // (zfs-fuse has no `written`) → a new snapshot.
      // The interval's snapshot is taken here, once, before any step sends it: the engine
      // then finds it existing, so no step owns it and a failing step (a full or diverged
      // replica) never destroys it while another replica's step sends it (DESIGN.md).
      let snapshotName: string | undefined;
      let ready: Promise<unknown> = Promise.resolve();
      const shared = this.taken.get(pair.datasetId);
      if (shared && began - shared.at < interval) ({ name: snapshotName, ready } = shared);
      else if (shared && !shared.delivered && pair.failures > 0) {
        // No replica received the last one (all failing: full pools, divergence): send it
        // again rather than pile up a snapshot a interval that nothing prunes (pruning runs
        // after a step that succeeded). Taken again if it went meanwhile. Not for a pair
        // whose steps were only cut short (a move, a policy change): its old snapshot's age
        // would be the replica's lag once received (bench:replication, 2026-12-06: 43 s).
        shared.ready = store.createSnapshot(pair.datasetId, shared.name);
        shared.ready.catch(() => {});
        ({ name: snapshotName, ready } = shared);
      } else if ((await store.written(pair.datasetId)) === 0) {
        const newest = (await store.listSnapshots(pair.datasetId)).sort((a, b) => a.createtxg - b.createtxg).at(-1);
        if (newest) snapshotName = newest.snapshot;
      }
      if (snapshotName === undefined) {
        const name = newSnapshotName(new Date(clock.now()));
        snapshotName = name;
        ready = store.createSnapshot(pair.datasetId, name);
        // A failed `zfs snapshot` is not shared: the next replica's step takes its own.
        const entry = { name, at: began, ready, delivered: false };
        this.taken.set(pair.datasetId, entry);
        ready.catch(() => {
          if (this.taken.get(pair.datasetId) === entry) this.taken.delete(pair.datasetId);
        });
      }
      this.markSending(pair, snapshotName);
      await ready;
      const grids = this.grids.get(pair.datasetId)!;
      const result = await this.deps.replicate({
        datasetId: pair.datasetId,
        peer,
        snapshotName,
        holdTags: { source: tags, target: HOLD_TAGS },
        prune: this.pruneRule(pair.datasetId, grids, pair),
        signal,
      });
      const now = clock.now();
      const entry = this.taken.get(pair.datasetId);
      if (entry?.name === result.snapshot) entry.delivered = true;
      pair.failures = 0;
      pair.nextAt = began + interval;
      pair.status = {
        ...pair.status,
        state: pair.paused ? 'paused' : 'ok',
        newest_snapshot: result.snapshot,
        newest_snapshot_created_at: snapshotTime(result.snapshot) ?? now,
        bytes_sent_total: pair.status.bytes_sent_total + result.bytes,
        last_success_at: now,
        last_error: null,
      };
      log.debug({ ...where, snapshot: result.snapshot, bytes: result.bytes }, 'replica updated');
    } catch (err) {
      const e = toDroverError(err);
      const now = clock.now();
      if (pair.paused || this.stopping.signal.aborted || !this.pairs.has(pair.key)) {
        // Aborted by a migration, a removal or the agent stopping: not the replica's fault.
        pair.nextAt = now;
        return;
      }
      pair.failures += 1;
      pair.nextAt = now + Math.min(interval, backoffDelay(this.backoff, pair.failures));
      const diverged = e.code === 'DROVER_ZFS_DIVERGED' || e.code === 'DROVER_ZFS_NO_COMMON_SNAPSHOT';
      // A diverged replica stays diverged until a step succeeds: the refusal of its next
      // receive often reaches us only as a broken pipe (zfs receive dies of SIGPIPE before
      // its message gets through), which says nothing new about the replica.
      if (!diverged && e.retryable && pair.status.state === 'diverged') return;
      pair.status = { ...pair.status, state: diverged ? 'diverged' : 'error', last_error: { code: e.code, message: e.message } };
      if (pair.failures === 1 || pair.failures % 20 === 0) log.warn({ ...where, err: e, failures: pair.failures }, diverged ? 'replica diverged: refusing to overwrite it' : 'replication step failed');
    } finally {
      this.markSending(pair, null);
    }
  }

  /** Records (or, with null, forgets) the snapshot `pair`'s running step sends. */
  private markSending(pair: Pair, snapshot: string | null): void {
    let names = this.sending.get(pair.datasetId);
    if (snapshot !== null) {
      if (!names) this.sending.set(pair.datasetId, (names = new Map()));
      names.set(pair.key, snapshot);
      return;
    }
    names?.delete(pair.key);
    if (names?.size === 0) this.sending.delete(pair.datasetId);
  }

  /**
   * The grid rule for one step. The step's own replica is the rule's `other`; the others are
   * the guid sets their last steps saw (`pair` excluded; null: a migration's step, every one).
   */
  private pruneRule(datasetId: string, grids: { primary: RetentionGrid; replicas: RetentionGrid }, pair: Pair | null): PruneRule {
    const rule = replicationPruneRule(grids, () =>
      [...this.pairs.values()].filter((p) => p.datasetId === datasetId && p !== pair && p.guids !== null).map((p) => p.guids!),
    );
    return (input) => {
      if (pair && input.side === 'source') pair.guids = new Set(input.other.map((s) => s.guid));
      if (input.side === 'target') return rule(input);
      // On the primary, what another replica's running step sends stays: that step has not
      // held it yet (it is held once received), and its send or hold would find it gone.
      const inFlight = new Set([...(this.sending.get(datasetId) ?? [])].filter(([key]) => key !== pair?.key).map(([, name]) => name));
      return rule(input).filter((name) => !inFlight.has(name));
    };
  }

  /** Read-modify-write of the recorded tags, one at a time per dataset (pairs of one dataset run side by side). */
  private recordTags(datasetId: string, change: (recorded: string[]) => string[]): Promise<void> {
    const previous = this.tagWrites.get(datasetId) ?? Promise.resolve();
    const next = previous
      .catch(() => {})
      .then(async () => {
        const recorded = await this.deps.store.recordedHoldTags(datasetId);
        await this.deps.store.recordHoldTags(datasetId, change(recorded));
      });
    this.tagWrites.set(datasetId, next);
    void next.finally(() => {
      if (this.tagWrites.get(datasetId) === next) this.tagWrites.delete(datasetId);
    }).catch(() => {});
    return next;
  }

  /** Releases per-replica hold tags this node no longer needs (one release per held snapshot and tag). */
  private async runCleanups(): Promise<void> {
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
      await this.recordTags(datasetId, (now) => now.filter((t) => !drop.includes(t)));
      log.info({ datasetId, released: drop }, 'replication holds released');
    }
  }
}

function emptyStatus(datasetId: string, replica: string): ReplicaStatus {
  return {
    dataset_id: datasetId,
    replica,
    state: 'seeding',
    newest_snapshot: null,
    newest_snapshot_created_at: null,
    lag_seconds: null,
    bytes_sent_total: 0,
    last_success_at: null,
    last_error: null,
  };
}

/** The policy's grids; a grid that does not parse (the control service validates them) falls back to the default, logged. */
function gridsOf(policy: ReplicationPolicy, log: Logger, datasetId: string): { primary: RetentionGrid; replicas: RetentionGrid } {
  const parse = (text: string, side: string): RetentionGrid => {
    const parsed = parseRetentionGrid(text);
    if (parsed.ok) return parsed.grid;
    log.warn({ datasetId, side, errors: parsed.errors }, 'retention grid invalid: the default grid applies');
    const fallback = parseRetentionGrid(DEFAULT_RETENTION_GRID);
    if (!fallback.ok) throw new Error('the default retention grid does not parse');
    return fallback.grid;
  };
  return { primary: parse(policy.retention.primary, 'primary'), replicas: parse(policy.retention.replicas, 'replicas') };
}

/** `promise`, or a rejection with the signal's reason once it aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

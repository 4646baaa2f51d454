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
 *
 * Beside it: `interval-snapshot.ts` (the shared snapshot, what running steps send),
 * `hold-tags.ts` (the per-replica hold tags' record and release), `pair.ts` (a pair, grids).
 */
import { backoffDelay, type Backoff } from '#common/backoff.ts';
import type { AgentDesired } from '#common/channel.ts';
import type { Clock } from '#common/clock.ts';
import { DroverError, toDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { Node, ReplicaStatus } from '#common/model.ts';
import type { PeerSource } from '../migration/peers.ts';
import type { Peer, PruneRule, ReplicateOptions, ReplicateResult } from '../transfer/types.ts';
import { HOLD_TAGS, replicaHoldTags } from '../zfs/names.ts';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';
import { HoldTagBook } from './hold-tags.ts';
import { IntervalSnapshots } from './interval-snapshot.ts';
import { gridsOf, newPair, raceAbort, type Grids, type Pair } from './pair.ts';
import { replicationPruneRule, snapshotTime } from './prune.ts';
import { Pruner, type SourceSide } from './pruner.ts';

/** What the scheduler needs from the local ZFS (ZfsStore has it). */
export interface ReplicationStore {
  listSnapshots(datasetId: string): Promise<ZfsSnapshotInfo[]>;
  /** Takes `snapshot` (an existing one of that name is fine). */
  createSnapshot(datasetId: string, snapshot: string): Promise<unknown>;
  /** The same without listing afterwards (ZfsStore: one command); createSnapshot when absent. */
  takeSnapshot?(datasetId: string, snapshot: string): Promise<unknown>;
  /** Destroys one snapshot (gone is fine; held: DROVER_ZFS_BUSY). The primary's pruning. */
  destroySnapshot(datasetId: string, snapshot: string): Promise<void>;
  /** Releases `tag` from several snapshots in one command; `release` one by one when absent. */
  releaseMany?(datasetId: string, snapshots: readonly string[], tag: string): Promise<void>;
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
  /**
   * Replicator.settle: with it, a step asks the engine to stop once its snapshot is verified
   * on the replica (`deferSettle`), the replica counts as holding it from then, and the base
   * holds are moved after (DESIGN.md "The step's tail"). Absent: the engine settles in the step.
   */
  settle?(peer: Peer, datasetId: string): Promise<void>;
  peers: PeerSource;
  /**
   * The replica's drover snapshots (Replicator.peerSnapshots): a pair whose replica's
   * snapshots are not known yet (a new primary after a move, an agent restart) lists them
   * before its first step, so the primary's pruning keeps the newest snapshot common with it.
   * Absent: learnt from the pair's first successful step only.
   */
  peerSnapshots?(peer: Peer, datasetId: string): Promise<ZfsSnapshotInfo[]>;
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

export class ReplicationScheduler {
  private readonly pairs = new Map<string, Pair>();
  private readonly concurrency: number;
  private readonly backoff: Backoff;
  private readonly stopping = new AbortController();
  private wake = new AbortController();
  private driver: Promise<void> | null = null;
  private readonly running = new Set<Promise<void>>();
  private readonly holdTags: HoldTagBook;
  private readonly snapshots: IntervalSnapshots;
  private readonly pruner: Pruner;
  private readonly grids = new Map<string, Grids>();
  /** The replica nodes of each dataset primary here with a policy (a move to one never rolls it back). */
  private readonly replicaNodes = new Map<string, ReadonlySet<string>>();
  /** Each migration's generation in the last view, by id (a diverged replica target is set aside under it). */
  private migrationGenerations = new Map<string, number>();
  /** The statuses as last ordered (`statusReport`), without their lag, and their seq. */
  private statusKey = '';
  private statusSeq = 0;

  constructor(private readonly deps: ReplicationDeps) {
    this.concurrency = Math.max(1, deps.concurrency ?? 4);
    this.backoff = deps.backoff ?? DEFAULT_BACKOFF;
    this.holdTags = new HoldTagBook({ store: deps.store, log: deps.log });
    this.snapshots = new IntervalSnapshots({ store: deps.store, clock: deps.clock });
    this.pruner = new Pruner({ store: deps.store, clock: deps.clock, log: deps.log });
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
    this.migrationGenerations = new Map(desired.migrations.map((m) => [m.id, m.generation]));
    const wanted = new Set<string>();
    for (const d of desired.datasets) {
      if (d.deleted) continue;
      // A move, or another primary, changes the snapshots here: the next step lists them.
      if (d.primary !== nodeUuid || moving.has(d.dataset_id)) this.snapshots.forgetListing(d.dataset_id);
      if (d.primary !== nodeUuid) {
        // A copy here that is not primary (a replica, or the source after a handoff) keeps
        // no per-replica holds of its own: they would pin its snapshots forever.
        if (!moving.has(d.dataset_id)) this.holdTags.releaseAll(d.dataset_id);
        continue;
      }
      const policy = d.replication;
      if (!policy || policy.replicas <= 0) continue;
      this.holdTags.primaryHere(d.dataset_id);
      const grids = gridsOf(policy, this.deps.log, d.dataset_id);
      this.grids.set(d.dataset_id, grids);
      this.replicaNodes.set(d.dataset_id, new Set(d.replicas));
      for (const replica of d.replicas) {
        if (replica === nodeUuid) continue;
        const key = `${d.dataset_id}/${replica}`;
        wanted.add(key);
        let pair = this.pairs.get(key);
        if (!pair) {
          pair = newPair(d.dataset_id, replica, policy, now);
          this.pairs.set(key, pair);
        }
        pair.policy = policy;
        pair.node = desired.nodes.find((n) => n.uuid === replica) ?? null;
        const paused = moving.has(d.dataset_id);
        if (paused && !pair.paused) {
          pair.running?.abort(new Error('a migration of the dataset began'));
          // A move moves the fixed tags on both sides: the next step takes its step holds again.
          pair.heldBase = null;
        }
        if (!paused && pair.paused) pair.nextAt = now;
        pair.paused = paused;
        pair.status.state = paused ? 'paused' : pair.status.state === 'paused' ? (pair.status.last_success_at !== null ? 'ok' : 'seeding') : pair.status.state;
      }
    }
    for (const [key, pair] of this.pairs) {
      if (wanted.has(key)) continue;
      pair.running?.abort(new Error('the replica is no longer wanted'));
      this.pairs.delete(key);
      this.pruner.forget(key);
      const stillPrimary = desired.datasets.some((d) => d.dataset_id === pair.datasetId && d.primary === nodeUuid && !d.deleted);
      if (stillPrimary) this.holdTags.releaseReplica(pair.datasetId, pair.replica);
    }
    this.driver ??= this.drive();
    this.kick();
    // A pair paused, resumed, added or dropped: reported now (the reporter sends only a status that changed).
    this.deps.onChange?.();
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
   * `statuses()` with their order: `seq` rises whenever a pair's status changes (anything but
   * the lag, which only ages), to the clock's ms or one more than before, whichever is higher —
   * so a restarted agent's statuses still order after its last run's. The control service keeps
   * the highest it got, from a full report or a replication report (docs/DESIGN.md §38).
   */
  statusReport(): { seq: number; statuses: ReplicaStatus[] } {
    const statuses = this.statuses();
    const key = JSON.stringify(statuses.map((s) => ({ ...s, lag_seconds: null })));
    if (key !== this.statusKey) {
      this.statusKey = key;
      this.statusSeq = Math.max(this.statusSeq + 1, Math.floor(this.deps.clock.now()));
    }
    return { seq: this.statusSeq, statuses };
  }

  /**
   * The replicas of a dataset primary here with a policy, with the guids each was last seen
   * to hold (null: not known yet); null when this node replicates no such dataset. For a
   * move's first round to a node with no copy (`move-step.ts`).
   */
  replicasOf(datasetId: string): Array<{ uuid: string; node: Node | null; guids: ReadonlySet<string> | null }> | null {
    if (!this.grids.has(datasetId)) return null;
    return [...this.pairs.values()].filter((p) => p.datasetId === datasetId).map((p) => ({ uuid: p.replica, node: p.node, guids: p.guids }));
  }

  /** What a listing of `replica`'s snapshots of `datasetId` found (its guids), for pruning and moves. */
  learned(datasetId: string, replica: string, guids: ReadonlySet<string>): void {
    const pair = this.pairs.get(`${datasetId}/${replica}`);
    if (pair) pair.guids = new Set(guids);
  }

  /**
   * A migration's replicate options for a dataset with a replication policy: its pruning
   * follows the grid (with every replica's newest common snapshot kept) instead of keep-N,
   * every snapshot between base and new is sent (`-I`), and a target that is one of its
   * replicas is never rolled back (`allowRollback` dropped): a replica that diverged (written
   * outside drover) is set aside whole under `drover-diverged/<id>-g<the migration's
   * generation>` and the dataset sent whole, instead of losing what was written there.
   */
  forMigration(options: ReplicateOptions): ReplicateOptions {
    const grids = this.grids.get(options.datasetId);
    if (!grids) return options;
    // `-I`: the move's target gets every snapshot a replica may hold (one a replica received
    // while the target's own step failed or was aborted), so after the handoff each replica's
    // newest snapshot is common with the new primary, not a divergence.
    let out: ReplicateOptions = { ...options, intermediates: true };
    if (this.replicaNodes.get(options.datasetId)?.has(options.peer.id)) {
      const { allowRollback: _dropped, ...rest } = out;
      out = rest;
      // A diverged replica is set aside under drover-diverged/ (never destroyed) and the
      // dataset sent whole, so the operator can still move there (DESIGN.md "Moves").
      const generation = options.corr === undefined ? undefined : this.migrationGenerations.get(options.corr);
      if (generation !== undefined) out = { ...out, setAsideDiverged: generation };
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
      pair.heldBase = null;
      pair.status.state = 'paused';
      pair.running?.abort(new Error('a move of the dataset began'));
    }
    // Paused: reported now (the reporter sends only a status that changed).
    this.deps.onChange?.();
    for (;;) {
      signal?.throwIfAborted();
      const steps = mine().flatMap((p) => (p.step ? [p.step] : []));
      if (steps.length === 0) break;
      this.deps.log.info({ datasetId, steps: steps.length }, 'move waits for the running replication steps of the dataset');
      await raceAbort(Promise.allSettled(steps), signal);
    }
    // The primary's pruning runs beside the steps: the move's `-I` range must not lose a snapshot to it.
    await raceAbort(this.pruner.idle(datasetId), signal);
  }

  /** Stops the driver and aborts running steps (they clean up as a failed step does). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.kick();
    for (const pair of this.pairs.values()) pair.running?.abort(new Error('the agent is stopping'));
    await this.driver;
    await Promise.allSettled([...this.running]);
    await this.pruner.idle();
    // A snapshot taken ahead is not a step's: stopped with the rest, so no `zfs snapshot` outlives stop().
    await this.snapshots.idle();
  }

  /** Resolves when no step (nor the primary's pruning) is running (tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
    await this.pruner.idle();
  }

  private kick(): void {
    this.wake.abort();
  }

  private async drive(): Promise<void> {
    const { clock, log } = this.deps;
    while (!this.stopping.signal.aborted) {
      this.wake = new AbortController();
      try {
        await this.holdTags.runCleanups();
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
    const { clock, log } = this.deps;
    const began = clock.now();
    const interval = pair.policy.interval_seconds * 1000;
    const where = { datasetId: pair.datasetId, replica: pair.replica };
    // The step's slot on the interval's schedule: when it was due, not when it began. The next
    // step is due a interval after the slot, so a slow step (a slow `zfs snapshot`, a long
    // stream) is followed at once by the next one and the schedule goes on where it was,
    // instead of every later snapshot drifting by the overrun. A step begun more than a
    // interval after its slot (a pause, the concurrency bound) starts a schedule of its own.
    const slot = pair.nextAt <= began && began - pair.nextAt < interval ? pair.nextAt : began;
    try {
      if (!pair.node) throw new DroverError('DROVER_NODE_NOT_FOUND', `replica node ${pair.replica} is not in the desired configuration`, { detail: where });
      const peer = await this.deps.peers.peerFor(pair.node);
      if (pair.guids === null && this.deps.peerSnapshots) {
        // Known before any step of the dataset prunes the primary (pruneRule): until then the
        // primary keeps everything, since this replica's base may be any of its snapshots.
        try {
          pair.guids = new Set((await this.deps.peerSnapshots(peer, pair.datasetId)).map((s) => s.guid));
        } catch (err) {
          log.debug({ ...where, err: toDroverError(err) }, 'listing the replica before its first step failed');
        }
      }
      // Record the tags before the first hold with them: destroy must be able to release them
      // (read once per term as primary, not before every step: hold-tags.ts).
      const tags = replicaHoldTags(pair.replica);
      await this.holdTags.ensure(pair.datasetId, [tags.base, tags.step]);
      // One snapshot per dataset per interval, shared by its replicas, taken before any step
      // sends it, or ahead while this pair's last step settled (interval-snapshot.ts).
      const { name: snapshotName, ready } = await this.snapshots.choose(pair.datasetId, slot, interval, pair.failures > 0, pair.key, signal);
      this.snapshots.markSending(pair.datasetId, pair.key, snapshotName);
      this.lineUp(pair, clock.now(), interval);
      await ready;
      // The primary's pruning decided without this step's range: it ends before the step plans.
      await this.pruner.idle(pair.datasetId);
      signal.throwIfAborted();
      const sendFrom = clock.now();
      const deferSettle = this.deps.settle !== undefined;
      this.snapshots.streaming(pair.datasetId, pair.key, true);
      const result = await this.deps.replicate({
        datasetId: pair.datasetId,
        peer,
        snapshotName,
        holdTags: { source: tags, target: HOLD_TAGS },
        // `-i` (base to newest): the data is all there; the snapshots between are not sent.
        // `-I` was tried (2026-12-07) and left a snapshot busy on the old primary after a move
        // in 2 of 3 move-race runs (0 of 3 with `-i`): see DESIGN.md "The step and its tail".
        intermediates: false,
        // Pruning is not the step's: pruner.ts, below, beside or every few intervals.
        prune: false,
        ...(deferSettle ? { deferSettle: true } : {}),
        // Its base tags hold the base already (its last settle put them there): no step holds.
        ...(pair.heldBase !== null ? { heldBase: pair.heldBase } : {}),
        // One listing of the primary per interval's snapshot, shared by the replicas' steps.
        sourceListing: () => this.snapshots.listing(pair.datasetId, snapshotName, interval),
        signal,
      }).finally(() => this.snapshots.streaming(pair.datasetId, pair.key, false));
      const delivered = clock.now();
      this.snapshots.delivered(pair.datasetId, result.snapshot);
      this.snapshots.markSending(pair.datasetId, pair.key, null);
      pair.failures = 0;
      pair.heldBase = deferSettle ? null : result.snapshot;
      pair.nextAt = slot + interval;
      if (pair.guids !== null) pair.guids.add(result.guid);
      pair.status = {
        ...pair.status,
        state: pair.paused ? 'paused' : 'ok',
        newest_snapshot: result.snapshot,
        newest_snapshot_created_at: snapshotTime(result.snapshot) ?? delivered,
        bytes_sent_total: pair.status.bytes_sent_total + result.bytes,
        last_success_at: delivered,
        last_error: null,
      };
      // The replica holds it now: reported before the tail (holds, pruning).
      this.deps.onChange?.();
      await this.tail(pair, peer, result.snapshot, signal);
      log.debug({ ...where, snapshot: result.snapshot, bytes: result.bytes, snapshotMs: sendFrom - began, replicateMs: delivered - sendFrom, tailMs: clock.now() - delivered, totalMs: clock.now() - began }, 'replication step');
    } catch (err) {
      const e = toDroverError(err);
      const now = clock.now();
      pair.heldBase = null;
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
      this.snapshots.markSending(pair.datasetId, pair.key, null);
    }
  }

  /**
   * What follows a step once the replica holds its snapshot (DESIGN.md "The step's tail"):
   * the next interval's snapshot taken ahead when this pair's next step is due before the tail
   * ends; the base holds moved (`settle`, deferred by the step); the replica's side pruned
   * when due, under the step's peer lock; the primary's side started beside it when due. A
   * failure here is housekeeping: logged, and the next step's recovery or pruning finishes it.
   */
  private async tail(pair: Pair, peer: Peer, snapshot: string, signal: AbortSignal): Promise<void> {
    const { clock, log } = this.deps;
    const where = { datasetId: pair.datasetId, replica: pair.replica };
    const began = clock.now();
    const interval = pair.policy.interval_seconds * 1000;
    if (pair.nextAt <= began + pair.tailMs) {
      this.snapshots.prefetch(pair.datasetId, Math.max(pair.nextAt, began - interval), interval, pair.key, this.stopping.signal).catch((err: unknown) => log.debug({ ...where, err: toDroverError(err) }, 'taking the next snapshot ahead failed'));
    }
    try {
      if (this.deps.settle) {
        await this.deps.settle(peer, pair.datasetId);
        pair.heldBase = snapshot;
      }
      const grids = this.grids.get(pair.datasetId);
      if (grids && !signal.aborted && this.pruner.targetDue(pair.key, pair.policy.interval_seconds)) {
        const step = await peer.beginStep(pair.datasetId, { signal });
        try {
          const others = this.otherPairs(pair).flatMap((p) => (p.guids === null ? [] : [p.guids]));
          const guids = await this.pruner.pruneTarget({ step, datasetId: pair.datasetId, grid: grids.replicas, others });
          if (guids !== null) pair.guids = guids;
        } finally {
          await step.end();
        }
      }
    } catch (err) {
      log.warn({ ...where, err: toDroverError(err) }, 'settling or pruning after a replication step failed');
    }
    if (!pair.paused) this.pruneSource(pair.datasetId, pair.policy.interval_seconds);
    pair.tailMs = clock.now() - began;
  }

  /**
   * The dataset's other replicas whose next step is due within the interval send the snapshot
   * `pair` just chose now, not at their own due time: its age until then would be their lag
   * (bench:replication at 2 s, 2026-12-07: one replica's steps began ~1 s after the other's, its
   * snapshots 1.3 s old when received against 0.4 s). From then on their steps begin together.
   * A failing pair keeps its backoff.
   */
  private lineUp(pair: Pair, now: number, interval: number): void {
    let moved = false;
    for (const other of this.otherPairs(pair)) {
      if (other.paused || other.running !== null || other.failures > 0 || other.nextAt <= now || other.nextAt - now >= interval) continue;
      other.nextAt = now;
      moved = true;
    }
    if (moved) this.kick();
  }

  /** The other pairs of `pair`'s dataset. */
  private otherPairs(pair: Pair): Pair[] {
    return [...this.pairs.values()].filter((p) => p.datasetId === pair.datasetId && p !== pair);
  }

  /**
   * Starts the primary's pruning of `datasetId` when due. The steps' shared listing of the
   * primary is forgotten when it starts and when it ends: a step waits for a pruning under way,
   * then plans with a listing made after it.
   */
  private pruneSource(datasetId: string, intervalSeconds: number): void {
    const started = this.pruner.pruneSourceWhenDue(datasetId, intervalSeconds, () => {
      this.snapshots.forgetListing(datasetId);
      return this.sourceSide(datasetId);
    });
    if (started) void this.pruner.idle(datasetId).then(() => this.snapshots.forgetListing(datasetId));
  }

  /** What the primary's pruning of `datasetId` decides with, now; null when it must not run (paused, no policy). */
  private sourceSide(datasetId: string): SourceSide | null {
    const grids = this.grids.get(datasetId);
    const pairs = [...this.pairs.values()].filter((p) => p.datasetId === datasetId);
    if (!grids || pairs.length === 0 || pairs.some((p) => p.paused)) return null;
    return {
      grid: grids.primary,
      replicas: pairs.map((p) => ({ baseTag: replicaHoldTags(p.replica).base, guids: p.guids })),
      running: pairs.flatMap((p) => {
        const sending = this.snapshots.sendingBy(datasetId, p.key);
        return sending === null ? [] : [{ guids: p.guids, sending }];
      }),
    };
  }

  /**
   * The grid rule for one step. The step's own replica is the rule's `other`; the others are
   * the guid sets their last steps (or listings) saw (`pair` excluded; null: a migration's
   * step, every one). Both sides keep their newest common snapshot with each of them: the
   * target of a move, or a replica that may become primary by one, must still share a
   * snapshot with the other replicas afterwards.
   */
  private pruneRule(datasetId: string, grids: Grids, pair: Pair | null): PruneRule {
    const others = (): Pair[] => [...this.pairs.values()].filter((p) => p.datasetId === datasetId && p !== pair);
    const rule = replicationPruneRule(grids, () => others().flatMap((p) => (p.guids === null ? [] : [p.guids])));
    return (input) => {
      if (pair && input.side === 'source') pair.guids = new Set(input.other.map((s) => s.guid));
      if (input.side === 'target') return rule(input);
      // A replica whose snapshots are not known (not listed or replicated to since this node
      // became primary or started) may need any of them as its base, and a new primary holds
      // no base for it yet: the primary prunes nothing until every replica is known.
      if (others().some((p) => p.guids === null)) return [];
      // On the primary, what another replica's running step sends stays: that step has not
      // held it yet (it is held once received), and its send or hold would find it gone.
      const inFlight = this.snapshots.inFlight(datasetId, pair?.key ?? null);
      return rule(input).filter((name) => !inFlight.has(name));
    };
  }
}

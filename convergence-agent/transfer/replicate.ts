/**
 * The replication engine (docs/DESIGN.md §5–§7; README.md beside this file is its design):
 * `replicate()` snapshots a dataset and brings one peer to that snapshot, full or
 * incremental from the newest common snapshot found by guid, under holds, journaled, with
 * a stall watchdog and whole-step retries for retryable failures.
 */
import { backoffDelay, type Backoff } from '#common/backoff.ts';
import { systemClock, type Clock } from '#common/clock.ts';
import { DroverError, isDroverError, toDroverError } from '#common/errors.ts';
import { silentLogger, type Logger } from '#common/log.ts';
import type { SendFlag } from '../zfs/argv.ts';
import { HOLD_TAGS, assertDatasetId, assertSnapshotName } from '../zfs/names.ts';
import type { ZfsDatasetInfo, ZfsSnapshotInfo } from '../zfs/types.ts';
import type { ZfsFeatures } from '../zfs/zfs-features.ts';
import type { ZfsStore } from '../zfs/zfs.ts';
import { StepJournal, type StepRecord } from './journal.ts';
import { KeyedMutex } from '#common/keyed-mutex.ts';
import { divergenceError, planStep, snapshotsToPrune } from './plan-step.ts';
import { FIXED_HOLD_TAGS, recoverStep, settleHolds, releaseStepHolds } from './recover-step.ts';
import { newSnapshotName } from './snapshot-name.ts';
import { isRetryable, startSend, streamStep } from './stream-step.ts';
import type { AgentMetrics } from '../metrics.ts';
import type { Peer, PeerStep, PruneRule, ReplicateOptions, ReplicateResult, StepHoldTags } from './types.ts';

export interface ReplicatorOptions {
  store: ZfsStore;
  /** Where step journals live (the agent's state dir). */
  stateDir: string;
  log?: Logger;
  /** No byte for this long kills the step (DROVER_TRANSFER_STALLED). Default 60 s. */
  stallMs?: number;
  /** Whole-step retries of a retryable failure. Default 2. */
  retries?: number;
  /** drover snapshots kept on each side after a step (never fewer than the base). Default 3. */
  keepSnapshots?: number;
  /** How long a step waits for another step on the same dataset. Default 10 min. */
  waitMs?: number;
  /** Time for retries, waits and step timings; default the system clock. */
  clock?: Clock;
  /** Where the bytes sent are counted, under `transport` (docs/DESIGN.md §25). */
  metrics?: Pick<AgentMetrics, 'sent'>;
  /** The transport's name for the bytes-sent metric (`ssh`, `tls`). */
  transport?: string;
}

/** Whole-step retries: 500 ms doubling to 5 s. */
const STEP_RETRY: Backoff = { initialMs: 500, capMs: 5_000 };

export class Replicator {
  private readonly store: ZfsStore;
  private readonly journal: StepJournal;
  private readonly log: Logger;
  private readonly mutex: KeyedMutex;
  private readonly stallMs: number;
  private readonly retries: number;
  private readonly keep: number;
  private readonly waitMs: number;
  private readonly clock: Clock;
  private readonly sent: (bytes: number) => void;

  constructor(options: ReplicatorOptions) {
    this.store = options.store;
    this.journal = new StepJournal(options.stateDir);
    this.log = (options.log ?? silentLogger()).child({ subsystem: 'replication' });
    this.stallMs = options.stallMs ?? 60_000;
    this.retries = options.retries ?? 2;
    this.keep = options.keepSnapshots ?? 3;
    this.waitMs = options.waitMs ?? 600_000;
    this.clock = options.clock ?? systemClock;
    const transport = options.transport ?? 'ssh';
    this.sent = (bytes) => options.metrics?.sent(transport, bytes);
    this.mutex = new KeyedMutex({ busyCode: 'DROVER_TRANSFER_BUSY', abortedCode: 'DROVER_TRANSFER_ABORTED', what: 'transfer', clock: this.clock });
  }

  /**
   * Brings `peer` to a snapshot of `datasetId` (the named one, or a fresh one). Two calls
   * for one (peer, dataset) run one after the other. Throws DROVER_ZFS_DIVERGED,
   * DROVER_ZFS_NO_COMMON_SNAPSHOT, DROVER_TRANSFER_TARGET_WRITABLE, DROVER_ZFS_NO_SPACE…
   * (permanent) or the last retryable error once retries are spent.
   */
  async replicate(options: ReplicateOptions): Promise<ReplicateResult> {
    // Names are checked before anything runs, here or on the peer.
    assertDatasetId(options.datasetId);
    if (options.snapshotName !== undefined) assertSnapshotName(options.snapshotName);
    const key = `${options.peer.id}/${options.datasetId}`;
    return this.mutex.run(
      key,
      async () => {
        // Snapshots this call took, in any attempt: a permanent failure in a retry removes
        // the one the first attempt took, so the source is as it was before the call.
        const created = new Set<string>();
        // Whether any attempt may have left a step hold (one taken, or a journal found): only
        // when none can be there does settling skip the step tags' releases.
        const holds = { taken: false };
        // A replica modified since its newest snapshot plans as an incremental and is refused
        // by `zfs receive` ("destination has been modified"): with setAsideDiverged, one more
        // attempt sets it aside first (not counted as a retry).
        let forceAside = false;
        for (let attempt = 1; ; attempt++) {
          try {
            // A caller's shared listing serves the first attempt only: a retry lists afresh.
            return await this.step(attempt === 1 && !forceAside ? options : { ...options, sourceListing: undefined }, created, holds, forceAside);
          } catch (err) {
            const e = toDroverError(err);
            if (e.code === 'DROVER_ZFS_DIVERGED' && options.setAsideDiverged !== undefined && !options.allowRollback && !forceAside && !options.signal?.aborted) {
              forceAside = true;
              attempt -= 1;
              continue;
            }
            if (!isRetryable(e) || attempt > this.retries || options.signal?.aborted) throw e;
            this.log.warn({ err: e, datasetId: options.datasetId, peer: options.peer.id, attempt }, 'replication step failed, retrying');
            await this.clock.sleep(backoffDelay(STEP_RETRY, attempt), options.signal);
          }
        }
      },
      { waitMs: this.waitMs, signal: options.signal },
    );
  }

  /**
   * Finishes a step replicated with `deferSettle`: moves the base holds to its snapshot on
   * both sides and clears the journal. Nothing to do when the journal has no such step.
   */
  async settle(peer: Peer, datasetId: string): Promise<void> {
    assertDatasetId(datasetId);
    await this.mutex.run(
      `${peer.id}/${datasetId}`,
      async () => {
        const record = await this.journal.read(peer.id, datasetId);
        if (record?.phase !== 'sending') return;
        const step = await peer.beginStep(datasetId, { waitMs: this.waitMs });
        try {
          await settleHolds(this.store, step, datasetId, record.snapshot, record.base, record.holdTags ?? FIXED_HOLD_TAGS, record.stepHolds !== false);
          await this.journal.clear(peer.id, datasetId);
        } finally {
          await step.end();
        }
      },
      { waitMs: this.waitMs },
    );
  }

  /**
   * Opens the peer's receive of the next incremental into `datasetId` ahead of its step
   * (`Peer.prepareReceive`), with the options that step will use; resolves once the peer
   * waits for the stream. Nothing to do on a transport that cannot.
   */
  async prepareReceive(peer: Peer, datasetId: string): Promise<void> {
    assertDatasetId(datasetId);
    if (!peer.prepareReceive) return;
    const [local, remote] = await Promise.all([this.store.features(), peer.features()]);
    await peer.prepareReceive(datasetId, { resumable: local.resumableReceive && remote.resumableReceive, full: false });
  }

  /** The peer's drover snapshots of `datasetId`, oldest first ([] when it has none). */
  async peerSnapshots(peer: Peer, datasetId: string): Promise<ZfsSnapshotInfo[]> {
    const step = await peer.beginStep(datasetId, { waitMs: this.waitMs });
    try {
      return await step.listSnapshots();
    } finally {
      await step.end();
    }
  }

  private async step(options: ReplicateOptions, created: Set<string>, holds: { taken: boolean }, forceAside = false): Promise<ReplicateResult> {
    const { datasetId, peer } = options;
    const where = { datasetId, peer: peer.id, ...(options.corr === undefined ? {} : { corr: options.corr }) };
    const step = await peer.beginStep(datasetId, { waitMs: this.waitMs, signal: options.signal });
    let record: StepRecord | null = null;
    let createdHere = false;
    const began = this.clock.now();
    const tags = options.holdTags ?? FIXED_HOLD_TAGS;
    const custom = options.holdTags !== undefined;
    let holding: Promise<unknown> = Promise.resolve();
    try {
      const [local, remote] = await Promise.all([this.store.features(), peer.features()]);
      const resumable = local.resumableReceive && remote.resumableReceive;

      let name = options.snapshotName;
      let resumeToken: string | null = null;
      const journaled = await this.journal.read(peer.id, datasetId);
      if (journaled) {
        holds.taken = true;
        const recovered = await recoverStep({ store: this.store, step, journal: this.journal, record: journaled, resumable, requested: name, log: this.log, clock: this.clock });
        if (recovered.kind === 'completed') return recovered.result;
        if (recovered.kind === 'reuse' || recovered.kind === 'resume') name = recovered.record.snapshot;
        if (recovered.kind === 'resume') resumeToken = recovered.token;
      }
      // A name made here is new: only a given or recovered one can exist already (one zfs
      // list less inside a migration's stopped interval).
      const fresh = name === undefined;
      name ??= newSnapshotName();

      // The peer's dataset and snapshots do not depend on the snapshot about to be taken:
      // asked now, the round trip runs beside `zfs snapshot` (its transaction group's sync),
      // not after it.
      // One request (one zfs command on the peer) where the transport has it.
      const peerState: Promise<readonly [ZfsDatasetInfo | null, ZfsSnapshotInfo[]]> = step.state
        ? step.state().then((s) => [s.dataset, s.snapshots] as const)
        : Promise.all([step.getDataset(), step.listSnapshots()]);
      peerState.catch(() => {});

      // A given name that exists (continuous replication's snapshot, taken by its scheduler
      // for all replicas) is sent as it is: not the step's own, and no `zfs snapshot` again.
      // The listing that finds it is the one the step plans with: the caller's shared one
      // when it has the name (and no earlier step's journal was found), else one made here.
      let listed: ZfsSnapshotInfo[] | null = null;
      if (!fresh && journaled === null && options.sourceListing) {
        const shared = await options.sourceListing();
        if (shared.some((s) => s.snapshot === name)) listed = shared;
      }
      if (!fresh && listed === null) listed = await this.store.listSnapshots(datasetId);
      const existing = listed?.find((s) => s.snapshot === name);
      // The listing that found the new snapshot's guid is the one the step plans with.
      const taken = existing ? null : await this.store.createSnapshotListed(datasetId, name);
      const snapshot = existing ?? taken!.snapshot;
      if (!existing) created.add(name);
      createdHere = created.has(name);
      record = {
        version: 1,
        datasetId,
        peerId: peer.id,
        phase: 'snapshotted',
        snapshot: name,
        snapshotGuid: snapshot.guid,
        base: null,
        startedAt: this.clock.now(),
        pid: process.pid,
        ownSnapshot: createdHere,
        ...(custom ? { holdTags: tags } : {}),
      };
      await this.journal.write(record);

      // The peer's snapshots are asked beside its dataset ([] when it has none), not after it:
      // one round trip to the peer less.
      const [sourceSnaps, [listedTarget, targetSnaps]] = await Promise.all([taken ? taken.snapshots : listed!, peerState]);
      let target = listedTarget;
      let plan = planStep(sourceSnaps, target ? targetSnaps : null, name);
      let setAside: string | undefined;
      if ((plan.kind === 'no-common' || plan.kind === 'diverged' || (forceAside && plan.kind === 'incremental')) && options.setAsideDiverged !== undefined && !options.allowRollback && target?.readonly && step.setAside) {
        // A move to a replica that diverged: its copy goes aside whole (never destroyed), the
        // dataset is sent whole. The peer refuses a writable dataset or a name kept already.
        setAside = await step.setAside(options.setAsideDiverged);
        this.log.warn({ ...where, kept: setAside, diverged: plan.kind === 'diverged' ? plan.targetNewer.map((s) => s.snapshot) : [] }, 'diverged replica set aside: the dataset is sent whole');
        target = null;
        plan = planStep(sourceSnaps, null, name);
      }
      if (plan.kind === 'up-to-date') {
        await settleHolds(this.store, step, datasetId, name, null, tags);
        await this.journal.clear(peer.id, datasetId);
        return { snapshot: name, guid: snapshot.guid, bytes: 0, incremental: false, baseSnapshot: null, resumed: journaled !== null };
      }
      if (plan.kind === 'no-common') throw divergenceError(plan, where);
      if (plan.kind === 'diverged' && !options.allowRollback) throw divergenceError(plan, where);
      if (target && !target.readonly) {
        throw new DroverError('DROVER_TRANSFER_TARGET_WRITABLE', `dataset ${datasetId} on ${peer.id} is writable: it is not a replica, refusing to receive into it`, {
          detail: where,
        });
      }
      const base = plan.kind === 'full' ? null : plan.base.snapshot;

      // The step's holds on the base go beside the stream (each `zfs hold` waits for a
      // transaction group): the base is already held on both sides by the step that made it
      // the base (its `base` tag), and a snapshot being sent or received into cannot be
      // destroyed meanwhile. They must have landed before the step counts as done. None at
      // all on a base both listings show held when the caller says its base tags are there
      // (`skipHeldBaseHolds`, or `heldBase` naming this base): two holds and, at settle, two
      // releases less, each a transaction group's sync on zfs-fuse.
      const knownHeld = options.skipHeldBaseHolds === true || (base !== null && options.heldBase === base);
      const heldAlready = knownHeld && !options.allowRollback && base !== null && held(sourceSnaps, base) && held(targetSnaps, base);
      if (base && !heldAlready) holds.taken = true;
      record = { ...record, phase: 'sending', base, ...(holds.taken ? {} : { stepHolds: false }) };
      await this.journal.write(record);
      if (base && !heldAlready) holding = Promise.all([this.store.hold(datasetId, base, tags.source.step), step.hold(base, tags.target.step)]);
      holding.catch(() => {});
      if (base && options.allowRollback) {
        await holding;
        const newer = plan.kind === 'diverged' ? plan.targetNewer : [];
        for (const s of newer) for (const tag of Object.values(HOLD_TAGS)) await step.release(s.snapshot, tag);
        await step.rollback(base);
        if (newer.length > 0) this.log.warn({ ...where, base, discarded: newer.map((s) => s.snapshot) }, 'replica rolled back to the common snapshot');
      }

      const started = this.clock.now();
      const prepareMs = started - began;
      const sink = step.receive({ resumable, full: base === null });
      const send = startSend(this.store, sink, { datasetId, snapshot: name, base, flags: sendFlags(local, remote), resumeToken, intermediates: options.intermediates === true });
      const bytes = await streamStep({
        send,
        sink,
        stallMs: this.stallMs,
        signal: options.signal,
        onBytes: (n, elapsedMs) => options.onProgress?.({ datasetId, bytes: n, elapsedMs, bytesPerSecond: elapsedMs > 0 ? (n * 1000) / elapsedMs : 0 }),
      });

      await holding;
      const sendMs = this.clock.now() - started;
      // The guid check (docs/DESIGN.md §5): the snapshot the peer read back right after its
      // receive (received.ts), or — from a peer that does not say, or names another — its listing.
      const received = await sink.done;
      const arrived = received?.guid === snapshot.guid || (await step.listSnapshots()).some((s) => s.guid === snapshot.guid);
      if (!arrived) {
        throw new DroverError('DROVER_TRANSFER_VERIFY_FAILED', `snapshot ${name} (guid ${snapshot.guid}) is not on ${peer.id} after the receive`, {
          retryable: true,
          detail: { ...where, snapshot: name, guid: snapshot.guid },
        });
      }
      if (!options.deferSettle) {
        await settleHolds(this.store, step, datasetId, name, base, tags, record.stepHolds !== false);
        await this.journal.clear(peer.id, datasetId);
      }
      record = null;
      const settled = this.clock.now();
      if (typeof options.prune === 'function') await this.pruneBy(options.prune, step, datasetId, name, tags);
      else if (options.prune !== false) await this.prune(step, datasetId, name);
      const ms = { prepare: prepareMs, send: sendMs, settle: settled - started - sendMs, prune: this.clock.now() - settled };
      const dataPath = sink.direct ? 'native' : 'in-process';
      this.sent(bytes);
      this.log.info({ ...where, snapshot: name, base, bytes, dataPath, ms: this.clock.now() - started, steps: ms }, 'snapshot sent');
      return { snapshot: name, guid: snapshot.guid, bytes, incremental: base !== null, baseSnapshot: base, resumed: journaled !== null, dataPath, ...(setAside === undefined ? {} : { setAside }) };
    } catch (err) {
      // Holds still in flight land first, so the release finds them.
      await holding.catch(() => {});
      if (record?.phase === 'sending' && record.stepHolds !== false) await releaseStepHolds(this.store, step, datasetId, record.snapshot, record.base, this.log, tags);
      // A retryable failure keeps the snapshot and the journal: the retry sends it again.
      // A permanent one leaves the source as it was: the step's own snapshot goes too —
      // unless the peer says it holds it (an abort can land after the receive finished):
      // destroying it then would leave the peer with a snapshot the source lacks, a replica
      // that looks diverged. It stays, with its journal, for the next step's recovery to
      // settle (recover-step.ts). A peer that cannot answer is taken not to hold it.
      if (record && !isRetryable(err) && !(record.phase === 'sending' && (await this.arrived(step, record)))) await this.abandon(record, createdHere);
      throw err;
    } finally {
      await step.end();
    }
  }

  /** True when the peer answers that it holds the step's snapshot. */
  private async arrived(step: PeerStep, record: StepRecord): Promise<boolean> {
    try {
      return (await step.listSnapshots()).some((s) => s.guid === record.snapshotGuid);
    } catch {
      return false;
    }
  }

  private async abandon(record: StepRecord, createdHere: boolean): Promise<void> {
    try {
      if (createdHere) await this.store.destroySnapshot(record.datasetId, record.snapshot);
      await this.journal.clear(record.peerId, record.datasetId);
    } catch (err) {
      this.log.warn({ err, datasetId: record.datasetId, snapshot: record.snapshot }, 'cleaning up a failed step failed');
    }
  }

  /** A `drover-base` older than the current base is left from a step that failed half-way. */
  private async releaseStaleBaseHolds(datasetId: string, base: string): Promise<void> {
    const snapshots = await this.store.listSnapshots(datasetId);
    const current = snapshots.find((s) => s.snapshot === base);
    for (const s of snapshots) {
      if (current && s.userrefs > 0 && s.createtxg < current.createtxg) await this.store.release(datasetId, s.snapshot, HOLD_TAGS.base);
    }
  }

  /**
   * Continuous replication's pruning: `rule` decides per side; the engine never destroys the
   * new snapshot or a held one. Before deciding, each side's base tag is released from its
   * snapshots older than the new one (left by steps that failed half-way, or on a replica
   * by an earlier primary): the newest common snapshot is now the new one.
   */
  private async pruneBy(rule: PruneRule, step: PeerStep, datasetId: string, snapshot: string, tags: StepHoldTags): Promise<void> {
    try {
      const [source, target] = await Promise.all([this.store.listSnapshots(datasetId), step.listSnapshots()]);
      await Promise.all([
        releaseOlder(source, snapshot, (s) => this.store.release(datasetId, s, tags.source.base)),
        releaseOlder(target, snapshot, (s) => step.release(s, tags.target.base)),
      ]);
      const sides: Array<['source' | 'target', ZfsSnapshotInfo[], ZfsSnapshotInfo[], (s: string) => Promise<void>]> = [
        ['source', await this.store.listSnapshots(datasetId), target, (s) => this.store.destroySnapshot(datasetId, s)],
        ['target', await step.listSnapshots(), source, (s) => step.destroySnapshot(s)],
      ];
      for (const [side, snapshots, other, destroy] of sides) {
        const doomed = new Set(rule({ side, snapshots, other, snapshot }));
        for (const s of snapshots) {
          if (!doomed.has(s.snapshot) || s.snapshot === snapshot || s.userrefs > 0) continue;
          try {
            await destroy(s.snapshot);
          } catch (err) {
            if (!isDroverError(err, 'DROVER_ZFS_BUSY')) throw err;
          }
        }
      }
    } catch (err) {
      // Pruning is housekeeping: a failure is logged and retried after the next step.
      this.log.warn({ err, datasetId }, 'pruning failed');
    }
  }

  /** Destroys old drover snapshots on both sides (one destroy each), never the new base or a held one. */
  private async prune(step: PeerStep, datasetId: string, base: string): Promise<void> {
    const sides: Array<[string, () => Promise<ZfsSnapshotInfo[]>, (s: string) => Promise<void>]> = [
      ['source', () => this.store.listSnapshots(datasetId), (s) => this.store.destroySnapshot(datasetId, s)],
      ['target', () => step.listSnapshots(), (s) => step.destroySnapshot(s)],
    ];
    for (const [side, list, destroy] of sides) {
      try {
        for (const s of snapshotsToPrune(await list(), this.keep, [base])) await destroy(s.snapshot);
        if (side === 'source') await this.releaseStaleBaseHolds(datasetId, base);
      } catch (err) {
        // Pruning is housekeeping: a failure is logged and retried after the next step.
        if (!isDroverError(err, 'DROVER_ZFS_BUSY')) this.log.warn({ err, datasetId, side }, 'pruning failed');
      }
    }
  }
}

/** True when the listing shows `snapshot` held (any tag: zfs-fuse counts holds, it cannot name them). */
function held(snapshots: readonly ZfsSnapshotInfo[], snapshot: string): boolean {
  return (snapshots.find((s) => s.snapshot === snapshot)?.userrefs ?? 0) > 0;
}

/** Releases `release` on each held snapshot created before `snapshot` (a tag not there is tolerated). */
async function releaseOlder(snapshots: readonly ZfsSnapshotInfo[], snapshot: string, release: (s: string) => Promise<void>): Promise<void> {
  const current = snapshots.find((s) => s.snapshot === snapshot);
  if (!current) return;
  for (const s of snapshots) if (s.userrefs > 0 && s.createtxg < current.createtxg) await release(s.snapshot);
}

/** `-L -e -c` where both sides have them (decided per host pair, so constant for a dataset); plain on zfs-fuse. */
function sendFlags(local: ZfsFeatures, remote: ZfsFeatures): SendFlag[] {
  const flags: SendFlag[] = [];
  if (local.sendLargeBlocks && remote.sendLargeBlocks) flags.push('L');
  if (local.sendEmbedded && remote.sendEmbedded) flags.push('e');
  if (local.sendCompressed && remote.sendCompressed) flags.push('c');
  return flags;
}

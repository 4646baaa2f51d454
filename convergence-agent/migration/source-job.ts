/**
 * The source's part of a migration (DESIGN.md beside this file), run as one background job
 * per migration: pre-copy rounds while the application runs, then cutover (hold, stop, read
 * only, final delta, guid check) and handoff; or, when something fails before handoff, abort
 * back here. Long steps (a full send can take minutes) must not hold up the convergence
 * loop, so the loop only starts this job and reads its `stage`; the planner keeps the
 * application and its datasets away from the ordinary planners while the job is in cutover.
 *
 * Safety rests on three rules kept here: the application is stopped and every dataset is
 * read-only *before* the final snapshot; `handoff` is posted only after the target holds
 * every final snapshot; the application is given back to the ordinary planner (which starts
 * it again) only once the control service has *accepted* `failed`.
 */
import type { MigrationUpdate } from '#common/channel.ts';
import { DroverError, toDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { Application, Migration, MigrationPhase, Node } from '#common/model.ts';
import { backoffDelay } from '#common/backoff.ts';
import type { Clock } from '#common/clock.ts';
import type { ContainerRuntime } from '../container-runtime.ts';
import { containerName } from '../plan/labels.ts';
import type { Peer, ReplicateOptions, ReplicateResult } from '../transfer/types.ts';
import type { DatasetStore } from '../zfs/types.ts';
import { CONTROL_RETRY, postStep, type MigrationControl, type PostResult } from './migration-control.ts';
import type { PeerSource } from './peers.ts';
import type { AgentMetrics } from '../metrics.ts';
import { runBeforeStop } from './before-stop.ts';
import { containerToStop, findApplication, readAheadStop, type StopAhead, type StopLookup } from './stop-ahead.ts';
import { SOURCE_PHASES } from '#common/migration-protocol.ts';
import { sourceStart } from './phases.ts';
import { startBusyProbe } from './busy-probe.ts';
import { DEFAULT_ROUND_POLICY, afterRound, bytesTotal, progressDue, rateOf, type Round, type RoundPolicy } from './round-policy.ts';

export type JobStage = 'starting' | 'pre-copy' | 'cutover' | 'handed-off';
/** How a job ended: `aborted` = the control service accepted `failed`; `stopped` = it gave up without a verdict. */
export type JobOutcome = 'handed-off' | 'aborted' | 'failed' | 'stopped';

export interface MigrationTuning extends RoundPolicy {
  /** Progress posts (each is a store write) at most this often. */
  progressIntervalMs: number;
  /** How long cutover waits for the proxies to ack the hold before it stops the application anyway. */
  ackWaitMs: number;
  /** Tries of each final send (each try is a replication step with its own retries). */
  finalSendAttempts: number;
  /** How long `cutover` is posted for (the application still runs meanwhile). */
  cutoverPostMs: number;
  /** How long `handoff` / `failed` are posted for (the application is stopped meanwhile). */
  verdictPostMs: number;
  /** Consecutive failed pre-copy rounds before the migration fails. */
  failedRoundsMax: number;
}

/** How long the cutover waits, beside the proxies' hold, for the target to open the final receive. */
const RECEIVE_OPEN_MS = 2_000;
/** How long the final sends' settling waits for the target's `release` (then it goes ahead). */
const SETTLE_WAIT_MS = 120_000;
/** How often that wait reads the view's phase (a local read, no request). */
const SETTLE_POLL_MS = 100;

export const DEFAULT_TUNING: MigrationTuning = {
  ...DEFAULT_ROUND_POLICY,
  progressIntervalMs: 1_000,
  ackWaitMs: 5_000,
  finalSendAttempts: 2,
  cutoverPostMs: 30_000,
  verdictPostMs: 120_000,
  failedRoundsMax: 3,
};

export interface SourceJobDeps {
  nodeUuid: string;
  control: MigrationControl;
  clock: Clock;
  log: Logger;
  datasets: Pick<DatasetStore, 'getDataset' | 'setReadonly'>;
  runtime: Pick<ContainerRuntime, 'listContainers' | 'stop' | 'stopProcesses' | 'prepareStop' | 'remove' | 'exec'>;
  replicate: (options: ReplicateOptions) => Promise<ReplicateResult>;
  /** Opens the peer's receive of a final send ahead (Replicator.prepareReceive); absent: opened by the send. */
  prepareReceive?: (peer: Peer, datasetId: string) => Promise<void>;
  /** Finishes a final send's deferred bookkeeping after handoff (Replicator.settle); absent: not deferred. */
  settle?: (peer: Peer, datasetId: string) => Promise<void>;
  /**
   * The migration's phase in the newest desired view (null: the view no longer lists it). The
   * final sends are settled once it is past `handoff` (release, done, failed) or gone; absent: at once.
   */
  phaseOf?: (migrationId: string) => MigrationPhase | null;
  peers: PeerSource;
  /** The node as the newest desired configuration knows it. */
  nodeOf: (uuid: string) => Node | undefined;
  /** The application as the newest desired configuration knows it (its `move` hooks). */
  applicationOf?: (name: string) => Application | undefined;
  tuning: MigrationTuning;
  stopTimeoutSeconds: number;
  /** Called whenever the stage changes (the loop wakes and re-plans). */
  onStage: (stage: JobStage) => void;
  /** Where the phases and the pause are timed (docs/DESIGN.md §25). */
  metrics?: Pick<AgentMetrics, 'migrationPhase' | 'cutoverPause'>;
}

export class SourceJob {
  stage: JobStage = 'starting';
  error: string | null = null;
  private readonly log: Logger;
  private sent = 0;
  private rounds: Round[] = [];
  private referenced = 0;
  /** Whether the size estimate was read again once the first round's stream began. */
  private referencedReread = false;
  private lastProgressAt: number | null = null;
  /** The progress post in flight: posts never overtake one another. */
  private inFlight: Promise<void> = Promise.resolve();
  private posting = false;
  /** This job stopped the application (stopProcesses): Docker may still be tearing it down. */
  private stoppedApplication = false;
  /** The stop's lookups, started beside the latest pre-copy round (readAheadStop). */
  private stopAhead: StopAhead | null = null;

  constructor(
    private readonly m: Migration,
    private readonly deps: SourceJobDeps,
    private readonly signal: AbortSignal,
  ) {
    // corr: the migration's id, in every process's records of it (docs/DESIGN.md §25).
    this.log = deps.log.child({ corr: m.id, migration: m.id, application: m.application, to: m.to });
  }

  /** Runs the source's part to its end. Never throws. */
  async run(): Promise<JobOutcome> {
    try {
      return await this.drive();
    } catch (err) {
      // A bug or an unexpected failure: never leave the application stopped without a verdict.
      const e = toDroverError(err);
      this.log.error({ err: e }, 'migration job failed unexpectedly');
      this.error = e.message;
      return this.stage === 'cutover' ? this.abortCutover(`unexpected: ${e.message}`) : this.failPreCopy(e.message);
    }
  }

  private async drive(): Promise<JobOutcome> {
    const record = await this.readRecord(this.deps.tuning.cutoverPostMs);
    if (record === null) return 'stopped';
    const start = sourceStart(record.phase);
    if (start.action === 'none') return start.why;
    if (start.action === 'abort-cutover') {
      this.setStage('cutover');
      return this.abortCutover('the source agent restarted (or gave up) during cutover');
    }
    this.setStage('pre-copy');
    if (start.postPreCopy) {
      const posted = await postStep(this.deps.control, this.deps.clock, this.m.id, this.update('pre-copy'), { deadlineMs: this.deps.tuning.cutoverPostMs, signal: this.signal });
      if (posted.outcome !== 'accepted') return this.verdictOf(posted, 'pre-copy');
    }

    let peer: Peer;
    try {
      const target = this.deps.nodeOf(this.m.to);
      if (!target) throw new DroverError('DROVER_MIGRATION_NO_TRANSPORT', `node ${this.m.to} is not in the configuration`);
      peer = await this.deps.peers.peerFor(target);
      for (const id of this.m.dataset_ids) this.referenced += (await this.deps.datasets.getDataset(id))?.referencedBytes ?? 0;
    } catch (err) {
      return this.failPreCopy(toDroverError(err).message);
    }

    const preCopy = await this.preCopy(peer);
    if (preCopy !== null) return preCopy;
    return this.cutover(peer);
  }

  /** Rounds until the policy says cutover; null to go on, or how the job ended. */
  private async preCopy(peer: Peer): Promise<JobOutcome | null> {
    const { tuning, clock } = this.deps;
    const began = clock.now();
    let failures = 0;
    // The before-stop hook runs once the rounds are small, then one more round sends what it wrote.
    const app = this.m.application === null ? undefined : this.deps.applicationOf?.(this.m.application);
    let hook = app?.move?.before_stop;
    let afterHook = false;
    for (;;) {
      if (this.signal.aborted) return 'stopped';
      const roundBegan = clock.now();
      const before = this.sent;
      // The stop's Docker lookups, started beside each round: the last one's are done, or nearly, when the cutover stops A.
      this.stopAhead = readAheadStop(this.stopLookup(), true);
      try {
        for (const id of this.m.dataset_ids) {
          const done = this.sent;
          const result = await this.deps.replicate({
            datasetId: id,
            peer,
            corr: this.m.id,
            allowRollback: true,
            signal: this.signal,
            onProgress: (p) => this.progress(before, done - before + p.bytes, roundBegan),
          });
          this.sent += result.bytes;
        }
      } catch (err) {
        if (this.signal.aborted) return 'stopped';
        const e = toDroverError(err);
        failures += 1;
        this.log.warn({ err: e, failures }, 'pre-copy round failed');
        if (!e.retryable || failures >= tuning.failedRoundsMax) return this.failPreCopy(`pre-copy: ${e.message}`);
        await clock.sleep(backoffDelay({ initialMs: 2_000, capMs: 10_000 }, failures), this.signal);
        continue;
      }
      failures = 0;
      this.rounds.push({ bytes: this.sent - before, ms: clock.now() - roundBegan });
      const decision = afterRound(this.rounds, clock.now() - began, tuning);
      this.log.info({ round: this.rounds.length, bytes: this.sent - before, ms: clock.now() - roundBegan, next: decision, afterHook }, 'pre-copy round sent');
      await this.postRoundEnd();
      if (afterHook || decision.next === 'cutover') {
        if (!afterHook && hook !== undefined && this.m.application !== null) {
          await runBeforeStop({ ...this.deps, log: this.log }, this.m.application, hook);
          hook = undefined;
          afterHook = true;
          continue;
        }
        this.deps.metrics?.migrationPhase('pre-copy', (clock.now() - began) / 1000);
        return null;
      }
    }
  }

  private async cutover(peer: Peer): Promise<JobOutcome> {
    const { tuning, clock } = this.deps;
    this.setStage('cutover');
    await this.inFlight;
    const posted = await postStep(this.deps.control, clock, this.m.id, this.update('cutover'), { deadlineMs: tuning.cutoverPostMs, signal: this.signal });
    // Not accepted: nothing was stopped yet; the application keeps running here.
    if (posted.outcome !== 'accepted') {
      const outcome = this.verdictOf(posted, 'cutover');
      if (outcome === 'stopped') this.setStage('pre-copy');
      return outcome;
    }
    const cutoverBegan = clock.now();
    const steps: Record<string, number> = {};
    let mark = cutoverBegan;
    const lap = (name: string): void => {
      const now = clock.now();
      steps[name] = now - mark;
      mark = now;
    };
    // Which container to stop, its first process and namespace were looked up beside the last
    // round (readAheadStop), else now, while the proxies take the hold.
    const ahead = this.stopAhead ?? readAheadStop(this.stopLookup(), false);
    this.stopAhead = null;
    // The final send's receive is opened on the target meanwhile too: its receiver started and
    // `zfs receive` waiting for the stream before the stop, not inside the stopped interval.
    const receiving = this.openFinalReceives(peer);
    await this.waitForHold();
    await receiving;
    lap('hold');
    const stopBegan = clock.now();
    let lookupWaitMs = 0;

    try {
      await ahead.prepared.catch(() => {}); // read ahead, or not: stopProcesses reads what it lacks
      const container = await containerToStop(this.stopLookup(), ahead);
      // How much of the stop was still the lookups (0 when they were done before the hold ended).
      lookupWaitMs = clock.now() - stopBegan;
      await this.stopApplication(container).catch(async (err: unknown) => {
        // Read ahead, then replaced by the ordinary planner before the cutover: stop the new one.
        if (!(ahead.early && err instanceof DroverError && err.code === 'DROVER_DOCKER_NOT_FOUND')) throw err;
        await this.stopApplication(await findApplication(this.stopLookup()));
      });
      lap('stop');
    } catch (err) {
      return this.abortCutover(`cutover: ${toDroverError(err).message}`);
    }
    // A is stopped: nothing writes to D any more. Making D read-only runs beside the final
    // send (it is one more zfs command inside the stopped interval) and must succeed before
    // handoff is posted.
    const readonly = Promise.allSettled(this.m.dataset_ids.map((id) => this.deps.datasets.setReadonly(id, true)));

    // The final delta: A is stopped and D read-only, so every acknowledged write is in it.
    // No abort signal here: an agent stopping mid-cutover finishes the move or aborts it.
    for (const id of this.m.dataset_ids) {
      let result: ReplicateResult | null = null;
      let lastError: DroverError | null = null;
      for (let attempt = 1; attempt <= tuning.finalSendAttempts && result === null; attempt++) {
        try {
          // The replica took the last round and nothing writes to it: a rollback (one more
          // remote command inside the stopped interval) only on a retry.
          // Pruning waits for the next step: this one runs while the application is stopped.
          // Its base keeps the `base` hold of the round that sent it: no step holds (two more syncs) here.
          result = await this.deps.replicate({ datasetId: id, peer, corr: this.m.id, allowRollback: attempt > 1, prune: false, deferSettle: this.deps.settle !== undefined, skipHeldBaseHolds: true });
        } catch (err) {
          lastError = toDroverError(err);
          this.log.warn({ err: lastError, datasetId: id, attempt }, 'final send failed');
          if (!lastError.retryable) break;
        }
      }
      if (result === null) {
        await readonly; // settled before the abort, so it cannot land after the planner made D writable again
        return this.abortCutover(`final send of dataset ${id}: ${lastError?.message ?? 'failed'}`);
      }
      this.sent += result.bytes;
      this.log.info({ datasetId: id, snapshot: result.snapshot, guid: result.guid, bytes: result.bytes }, 'final snapshot on the target');
    }

    lap('finalSend');
    const notReadonly = (await readonly).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (notReadonly) return this.abortCutover(`cutover: ${toDroverError(notReadonly.reason).message}`);
    const busy = startBusyProbe();
    const handoff = await postStep(this.deps.control, clock, this.m.id, this.update('handoff'), { deadlineMs: tuning.verdictPostMs });
    lap('handoff');
    // How busy this process was while the post was out: its answer read late, or sent late.
    const handoffPost = busy();
    if (handoff.outcome === 'accepted' || handoff.outcome === 'handed-off') {
      this.setStage('handed-off');
      // One reading of the clock for all three: the pause is never longer than the cutover.
      const now = clock.now();
      this.deps.metrics?.migrationPhase('cutover', (now - cutoverBegan) / 1000);
      this.deps.metrics?.cutoverPause((now - stopBegan) / 1000);
      // steps: where the cutover's time went (ms): hold acked, stop, read-only, final send, handoff posted.
      this.log.info({ cutoverMs: now - cutoverBegan, steps, lookupWaitMs, handoffPost, bytes: this.sent, rounds: this.rounds.length }, 'migration handed off');
      await this.settleAfterHandoff(peer);
      return 'handed-off';
    }
    if (handoff.outcome === 'failed') return this.abortCutover('the migration failed during cutover');
    // No verdict: the application stays stopped and claimed; the planner runs a new job
    // later, which reads the record and aborts or finds it handed off.
    this.error = `handoff not posted: ${handoff.error?.message ?? handoff.outcome}`;
    this.log.warn({ err: handoff.error }, 'handoff not posted');
    return 'stopped';
  }

  /**
   * The final sends' holds and journals, settled once the application is no longer waiting on
   * them: after the target's `release` (its start is the client's pause, and settling is four
   * zfs commands, two in the target's pool, beside it), or after SETTLE_WAIT_MS. Nothing waits
   * for it: until then the base keeps its holds on both sides, and a step that finds the
   * journal first finishes it. An agent stopping meanwhile leaves it to that step.
   */
  private async settleAfterHandoff(peer: Peer): Promise<void> {
    const settle = this.deps.settle;
    if (!settle) return;
    const { clock } = this.deps;
    const phaseOf = this.deps.phaseOf;
    const deadline = clock.now() + SETTLE_WAIT_MS;
    const began = clock.now();
    // The view may still be older than the handoff this job just posted (it is read each pass).
    const notReleased = (): boolean => {
      const phase = phaseOf?.(this.m.id) ?? null;
      return phase !== null && (phase === 'handoff' || SOURCE_PHASES.has(phase));
    };
    while (notReleased() && clock.now() < deadline && !this.signal.aborted) await clock.sleep(SETTLE_POLL_MS, this.signal);
    if (this.signal.aborted) return; // the agent is stopping
    this.log.debug({ waitedMs: clock.now() - began, phase: phaseOf?.(this.m.id) ?? null }, 'settling the final sends');
    for (const id of this.m.dataset_ids) {
      try {
        await settle(peer, id);
      } catch (err) {
        // The next step for this dataset and peer finds the journal and finishes it.
        this.log.warn({ err: toDroverError(err), datasetId: id }, 'final send not settled yet');
      }
    }
  }

  /** Waits (bounded) until every live proxy applied the route table that holds A's connections. */
  private async waitForHold(): Promise<void> {
    if (this.m.application === null) return;
    const { control, clock, tuning } = this.deps;
    const deadline = clock.now() + tuning.ackWaitMs;
    let waitingFor: string[] = [];
    try {
      const version = await control.routeVersion();
      for (;;) {
        const acks = await control.routeAcks(version);
        if (acks.acked) return;
        waitingFor = acks.waiting_for;
        if (clock.now() >= deadline) break;
        await clock.sleep(50);
      }
    } catch (err) {
      this.log.warn({ err }, 'route acks not read');
    }
    this.log.warn({ waitingFor, waitedMs: tuning.ackWaitMs }, 'proxies did not ack the hold in time; stopping the application anyway');
  }

  /**
   * Opens each dataset's final receive on the target (bounded by RECEIVE_OPEN_MS: a target
   * that is slow to answer is not waited for; the final send then opens its own). Never throws.
   */
  private async openFinalReceives(peer: Peer): Promise<void> {
    const open = this.deps.prepareReceive;
    if (!open) return;
    const began = this.deps.clock.now();
    const opened = Promise.all(this.m.dataset_ids.map((id) => open(peer, id))).then(
      () => this.log.debug({ ms: this.deps.clock.now() - began }, 'final receive opened on the target'),
      (err: unknown) => this.log.info({ err: toDroverError(err) }, 'final receive not opened ahead; the final send opens it'),
    );
    const bound = new AbortController();
    await Promise.race([opened, this.deps.clock.sleep(RECEIVE_OPEN_MS, bound.signal).catch(() => {})]);
    bound.abort();
  }

  private stopLookup(): StopLookup {
    return { runtime: this.deps.runtime, nodeUuid: this.deps.nodeUuid, application: this.m.application, stopTimeoutSeconds: this.deps.stopTimeoutSeconds };
  }

  /**
   * Stops the container found at the cutover's start. stopProcesses inspects it again: a
   * container stopped since is left alone, one removed since fails the stop (and the cutover
   * aborts back to the source).
   */
  private async stopApplication(container: { id: string; running: boolean } | null): Promise<void> {
    // Its processes gone is enough for the final snapshot; Docker's teardown goes on beside it.
    // One listed as stopped is asked again (stopProcesses inspects it first): a restart policy
    // may have started it since the listing, and nothing may write once the snapshot is taken.
    if (container) {
      await this.deps.runtime.stopProcesses(container.id, this.deps.stopTimeoutSeconds);
      this.stoppedApplication = true;
    }
  }

  /**
   * Back to the source after cutover began: the stopped container is removed (so the
   * ordinary planner creates and starts it again, whatever its restart policy), then
   * `failed` is posted; once accepted, the planner makes D writable and starts A here.
   */
  private async abortCutover(reason: string): Promise<JobOutcome> {
    this.error = reason;
    this.log.warn({ reason }, 'aborting the migration: back to the source');
    if (this.m.application !== null) {
      try {
        const name = containerName(this.m.application);
        const container = (await this.deps.runtime.listContainers(this.deps.nodeUuid)).find((c) => c.name === name);
        // A container this job stopped may still read running while Docker tears it down
        // (stopProcesses returns before that): wait for it. One found running on start is kept.
        if (container?.running && this.stoppedApplication) await this.deps.runtime.stop(container.id, this.deps.stopTimeoutSeconds);
        if (container && (!container.running || this.stoppedApplication)) await this.deps.runtime.remove(container.id);
      } catch (err) {
        this.log.warn({ err }, 'stopped application not removed');
      }
    }
    const posted = await postStep(this.deps.control, this.deps.clock, this.m.id, this.update('failed', reason), { deadlineMs: this.deps.tuning.verdictPostMs });
    return this.verdictOf(posted, 'failed');
  }

  /** Pre-copy failed: A never stopped, so `failed` is all there is to do. */
  private async failPreCopy(reason: string): Promise<JobOutcome> {
    this.error = reason;
    this.log.warn({ reason }, 'migration failed in pre-copy');
    const posted = await postStep(this.deps.control, this.deps.clock, this.m.id, this.update('failed', reason), { deadlineMs: this.deps.tuning.cutoverPostMs });
    return this.verdictOf(posted, 'failed');
  }

  /** What a step's answer means for the job (see phases.ts `outcomeOf`). */
  private verdictOf(posted: PostResult, requested: MigrationPhase): JobOutcome {
    if (posted.outcome === 'handed-off') return 'handed-off';
    if (requested === 'failed' && (posted.outcome === 'accepted' || posted.outcome === 'failed')) return 'aborted';
    if (posted.outcome === 'failed') return 'failed';
    if (posted.error) this.error ??= posted.error.message;
    return 'stopped';
  }

  /** Reads the record, retrying while the control service does not answer; null when it cannot be read. */
  private async readRecord(deadlineMs: number): Promise<Migration | null> {
    const { control, clock } = this.deps;
    const deadline = clock.now() + deadlineMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await control.get(this.m.id);
      } catch (err) {
        const e = toDroverError(err);
        this.error = e.message;
        if (this.signal.aborted || clock.now() >= deadline || e.detail.status === 404) return null;
        await clock.sleep(backoffDelay(CONTROL_RETRY, attempt + 1), this.signal);
      }
    }
  }

  /**
   * Progress of the current round, posted at most every `progressIntervalMs`: the running
   * totals, and the round's own figures — bytes of this round against its expected size, and
   * its rate over the round so far (the transfer's per-dataset rate is not the round's).
   */
  private progress(before: number, inRound: number, roundBegan: number): void {
    if (!this.referencedReread && this.rounds.length === 0) {
      this.referencedReread = true;
      void this.rereadReferenced();
    }
    if (this.posting || !progressDue(this.lastProgressAt, this.deps.clock.now(), this.deps.tuning.progressIntervalMs)) return;
    this.lastProgressAt = this.deps.clock.now();
    const total = bytesTotal({ sentBeforeRound: before, sentInRound: inRound, referencedBytes: this.referenced, rounds: this.rounds });
    const update: MigrationUpdate = {
      ...this.update('pre-copy'),
      round: this.rounds.length + 1,
      bytes_sent: before + inRound,
      bytes_total: total,
      rate_bytes_per_second: rateOf(inRound, this.deps.clock.now() - roundBegan),
      round_bytes_sent: inRound,
      round_bytes_total: total - before,
    };
    this.posting = true;
    this.inFlight = this.deps.control
      .update(this.m.id, update)
      .then(() => {}, (err: unknown) => this.log.debug({ err }, 'progress not posted'))
      .finally(() => (this.posting = false));
  }

  /**
   * The first round's size estimate, read again once its stream began. `referenced` as read
   * before the round can lag far behind: zfs-fuse updates it when a transaction group syncs,
   * and data the application wrote in the last seconds is not in it (the demo showed "64 KiB
   * / 124 KiB" for a 33 MiB round). The round's snapshot synced one, so the figure read now
   * holds all the round sends. Best effort; it only ever raises the estimate.
   */
  private async rereadReferenced(): Promise<void> {
    try {
      let total = 0;
      for (const id of this.m.dataset_ids) total += (await this.deps.datasets.getDataset(id))?.referencedBytes ?? 0;
      this.referenced = Math.max(this.referenced, total);
    } catch (err) {
      this.log.debug({ err }, 'size estimate not read again');
    }
  }

  /** After a round; best effort: a lost progress post changes nothing. */
  private async postRoundEnd(): Promise<void> {
    await this.inFlight;
    this.lastProgressAt = this.deps.clock.now();
    const last = this.rounds.at(-1);
    // The round just finished is whole: its figures are its bytes against themselves.
    const update: MigrationUpdate = {
      ...this.update('pre-copy'),
      rate_bytes_per_second: last ? rateOf(last.bytes, last.ms) : null,
      ...(last ? { round_bytes_sent: last.bytes, round_bytes_total: last.bytes } : {}),
    };
    try {
      await this.deps.control.update(this.m.id, update);
    } catch (err) {
      this.log.debug({ err }, 'progress not posted');
    }
  }

  /** A step with the figures so far: finished rounds, bytes sent, and (in pre-copy) the next round's expected size. */
  private update(phase: MigrationPhase, error?: string): MigrationUpdate {
    const expected = phase !== 'pre-copy' ? 0 : this.rounds.length === 0 ? this.referenced : (this.rounds.at(-1)?.bytes ?? 0);
    return {
      node_uuid: this.deps.nodeUuid,
      generation: this.m.generation,
      phase,
      round: this.rounds.length,
      bytes_sent: this.sent,
      bytes_total: this.sent + expected,
      ...(error === undefined ? {} : { error }),
    };
  }

  private setStage(stage: JobStage): void {
    if (this.stage === stage) return;
    this.stage = stage;
    this.deps.onStage(stage);
  }
}

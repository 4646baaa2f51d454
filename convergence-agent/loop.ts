/**
 * The convergence loop (docs/DESIGN.md §4):
 *   discover → plan → report → execute → sleep until woken or a timer fires.
 * Two activities run side by side: the watcher long-polls the control service and keeps the
 * newest desired configuration (waking the pass loop when its version changes); the pass
 * loop converges towards whatever desired configuration it has. Both catch everything: the
 * loop never dies, it logs, reports and backs off.
 *
 * Sleep (docs/DESIGN.md §4): after a pass that changed something, 100 ms ×4 per
 * unconverged pass up to the poll interval; converged, the poll interval (±20 % jitter) or
 * sooner when the planner or a backoff asks; at once when the watcher or a health change wakes it,
 * or when a pass applied a step the planner is in a hurry about (it asks for a recheck: during a
 * migration's release every pass is downtime).
 */
import type { ServiceSubnet } from '#common/service-subnet.ts';
import { backoffDelay } from '#common/backoff.ts';
import type { AgentDesired } from '#common/channel.ts';
import type { Logger } from '#common/log.ts';
import type { NodeProblem } from '#common/model.ts';
import type { Clock } from '#common/clock.ts';
import type { ControlChannel } from './control-channel.ts';
import { discoverRaw, healthTargets, toObserved, type RawObserved } from './discover.ts';
import type { ContainerRuntime } from './container-runtime.ts';
import type { Executor } from './execute.ts';
import type { HealthMonitor } from './health/monitor.ts';
import { plan } from './plan/plan.ts';
import { correlations } from './plan/correlation.ts';
import type { Change, MigrationJobState, PlanContext } from './plan/types.ts';
import { HandoffSteps } from './handoff-steps.ts';
import { buildReport, type NodeIdentity, type ReplicationStatusReport } from './report.ts';
import type { RestartLedger } from './restart-ledger.ts';
import type { Gates, GateState } from './gate/gates.ts';
import type { DatasetStore } from './zfs/types.ts';
import type { AgentMetrics } from './metrics.ts';

export interface LoopDeps {
  identity: NodeIdentity;
  store: DatasetStore;
  runtime: ContainerRuntime;
  channel: ControlChannel;
  executor: Executor;
  health: HealthMonitor;
  ledger: RestartLedger;
  clock: Clock;
  log: Logger;
  /** Longest sleep between passes; also the heartbeat period. */
  pollIntervalMs: number;
  /** How long one long-poll waits at the control service. */
  longPollMs?: number;
  /** [0, 1): jitter source, an input like time. */
  random?: () => number;
  /** The migration jobs (migration/jobs.ts): told the newest desired configuration, read each pass. */
  migrations?: { sync(desired: AgentDesired | null): void; states(): MigrationJobState[] };
  /**
   * The replication scheduler (replication/scheduler.ts): told the newest desired configuration,
   * its pairs reported each pass, with their order (a replication report sent between passes
   * may be newer: docs/DESIGN.md §38).
   */
  replication?: { sync(desired: AgentDesired | null): void; statusReport(): ReplicationStatusReport };
  /** Container gates (gate/gates.ts); null or absent where this node cannot warm-start a migration's container. */
  gates?: Gates | null;
  /** Where files that travel with applications are written (docs/DESIGN.md §22); absent: none here. */
  fileRoots?: { filesRoot: string; secretsRoot: string };
  /** Self-fencing (fence.ts): told of every acknowledged report; while it gates, failover-enabled applications do not start. */
  fence?: { acked(sentAt: number, version: number): Promise<void>; gating(desired: AgentDesired | null): boolean };
  /** This node's service subnet (docs/DESIGN.md §21); absent: containers get no peer names. */
  serviceSubnet?: ServiceSubnet;
  /** Where passes are timed (docs/DESIGN.md §25). */
  metrics?: Pick<AgentMetrics, 'pass'>;
  /** Where each new view is saved, for a start without a control service (desired-cache.ts, docs/DESIGN.md §29). */
  desiredCache?: { save(desired: AgentDesired): void };
}

export interface PassSummary {
  changes: Change[];
  applied: number;
  failed: number;
  problems: NodeProblem[];
  reported: boolean;
  /** How long the loop means to sleep after this pass. */
  sleepMs: number;
}

const FIRST_UNCONVERGED_MS = 100;
/** How long a loop waiting only for a migration's health check sleeps unless the health monitor wakes it. */
const RELEASE_WAIT_MS = 1_000;
/**
 * How long a pass's report is sent again while its changes run (heartbeat): longer than any
 * stop's grace a Compose file commonly gives (≤ 60 s) plus a slow dockerd; a pass stuck past it
 * counts as hung.
 */
export const HEARTBEAT_MAX_MS = 90_000;
/** How often unused gate directories are looked for (gate/gates.ts sweep). */
const GATE_SWEEP_EVERY_MS = 60_000;

export class ConvergenceLoop {
  private desired: AgentDesired | null = null;
  /** The view was read from disk at start, not received: the watcher's first poll asks for the current one at once. */
  private restored = false;
  private readonly stopping = new AbortController();
  private wakeController = new AbortController();
  private wakePending = false;
  private unconverged = 0;
  private lastProblems: NodeProblem[] = [];
  private lastGateSweep = -Infinity;
  private running: Promise<void>[] = [];
  /** A handoff's target steps between passes: before discovery, and release on the first passing check. */
  private readonly handoff: HandoffSteps;
  /** Set while a pass discovers: a new view is offered to it (it may give the pass up for a handoff). */
  private offerView: ((next: AgentDesired) => void) | null = null;

  constructor(private readonly deps: LoopDeps) {
    this.handoff = new HandoffSteps({
      nodeUuid: deps.identity.uuid,
      executor: deps.executor,
      health: deps.health,
      gates: deps.gates ?? null,
      clock: deps.clock,
      log: deps.log,
      plan: (desired, observed) => plan(desired, observed, this.planContext(desired)),
    });
  }

  /** Starts the watcher and the pass loop; returns at once. */
  start(): void {
    this.running = [this.watch(), this.passes()];
  }

  /** Stops both activities and waits for the current pass to finish. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake();
    await Promise.all(this.running);
    await this.deps.health.stop();
  }

  /** Ends the current sleep now (a new desired version, a health change). */
  wake(): void {
    this.wakePending = true;
    this.wakeController.abort();
  }

  /**
   * The health monitor's change: wakes the loop, and a container whose first passing check
   * is a migration's release gets it posted now, even while a pass runs.
   */
  healthChanged(containerId: string, status: string): void {
    if (status === 'healthy' && this.handoff.names(containerId)) {
      // The post first, then the pass: its listings (process spawns) would hold the post up.
      void this.handoff.releaseIfHealthy(this.desired, containerId).finally(() => this.wake());
      return;
    }
    this.wake();
  }

  /** The newest desired configuration the watcher has, or null before the first. */
  get currentDesired(): AgentDesired | null {
    return this.desired;
  }

  /** Replaces the desired configuration (the watcher does this; tests may too). */
  setDesired(desired: AgentDesired): void {
    this.desired = desired;
    this.restored = false;
    this.offerView?.(desired);
    this.wake();
  }

  /**
   * Starts from a view saved by an earlier run (desired-cache.ts), before `start()`: passes
   * keep the node as that view says until a control service answers; the watcher's first
   * poll then asks for the current view whatever its version, and replaces this one.
   */
  restoreDesired(desired: AgentDesired): void {
    this.desired = desired;
    this.restored = true;
  }

  /** One pass. Never throws. */
  async runPass(): Promise<PassSummary> {
    const began = this.deps.clock.monotonic();
    try {
      return await this.pass();
    } finally {
      this.deps.metrics?.pass((this.deps.clock.monotonic() - began) / 1000);
    }
  }

  private async pass(): Promise<PassSummary> {
    const { deps } = this;
    const desired = this.desired;
    const log = deps.log.child({ pass: deps.clock.now() });
    try {
      const raw = await this.discoverUnlessHandedOff(desired, discoverRaw({ store: deps.store, runtime: deps.runtime, gates: deps.gates ?? null, nodeUuid: deps.identity.uuid, log }));
      if (raw === null) {
        // Nothing planned or applied yet: the loop takes the handoff's steps now (on the last
        // pass's observation, as it would after this pass), then discovers afresh.
        log.info({ migrations: this.desired?.migrations.filter((m) => m.phase === 'handoff' && m.to === deps.identity.uuid).map((m) => m.id) }, 'pass given up for a handoff');
        return { changes: [], applied: 0, failed: 0, problems: this.lastProblems, reported: false, sleepMs: 0 };
      }
      deps.health.sync(healthTargets(desired, raw.containers, raw.gates));
      if (raw.containers) deps.ledger.retain(raw.containers.map((c) => c.id));
      deps.migrations?.sync(desired);
      deps.replication?.sync(desired);
      const observed = toObserved(raw, (id) => deps.health.health(id), deps.ledger);
      if (deps.migrations) observed.migrationJobs = deps.migrations.states();

      const result = plan(desired, observed, this.planContext(desired));
      const blocked: NodeProblem[] = result.blocked.map((b) => ({ ...b, kind: 'blocked' }));
      // The report (what discovery saw) and the changes go side by side: a round trip to the
      // control service before each pass's changes was downtime at a migration's handoff.
      const report = buildReport(deps.identity, observed, [...blocked, ...this.lastProblems], deps.replication?.statusReport(), result.updates);
      const executing = deps.executor.execute(result.changes, correlations(desired, deps.identity.uuid));
      const [reported, execution] = await Promise.all([this.report(report, log), executing, this.heartbeat(report, executing, log)]);
      // A gate opened this pass: its application starts now, so its health check starts now,
      // not after the next pass's discovery (the first passing probe is a migration's release).
      const opened = execution.applied.filter((c) => c.kind === 'open-container-gate');
      const gates: Record<string, GateState> = { ...raw.gates };
      if (opened.length > 0 && deps.gates) {
        // Read back as discovery reads it (the marker's time), so the next pass tracks the same start.
        for (const c of opened) gates[c.gateId] = await deps.gates.state(c.gateId).catch(() => ({ state: 'missing' as const }));
        deps.health.sync(healthTargets(desired, raw.containers, gates));
      }
      // Unused gate directories are litter, not state: swept now and then, after the changes.
      if (raw.containers && deps.gates && deps.clock.now() - this.lastGateSweep >= GATE_SWEEP_EVERY_MS) {
        this.lastGateSweep = deps.clock.now();
        await deps.gates.sweep(new Set(Object.keys(raw.gates ?? {})), deps.clock.now()).catch((err: unknown) => log.warn({ err }, 'gate directories not swept'));
      }
      this.lastProblems = execution.problems;
      this.handoff.passed({ observed, containers: raw.containers, gates }, result.releaseWhenHealthy ?? [], desired);
      const changed = execution.applied.length + execution.failed.length > 0;
      // A pass that moved a hurried subject forward (a migration handed off here) goes on at once.
      const hurried = result.recheckAfterMs !== null && execution.applied.length > 0 && execution.failed.length === 0;
      // Waiting only for a health check, the health monitor's change wakes the loop: a pass
      // every 100 ms would only be mid-discovery when it comes, and hold the release up.
      const awaitingHealth = !changed && this.handoff.awaitingHealth && result.changes.length === 0;
      const asks = [awaitingHealth ? Math.max(RELEASE_WAIT_MS, result.recheckAfterMs ?? 0) : result.recheckAfterMs, execution.retryInMs];
      const sleepMs = hurried ? 0 : this.sleepAfter(changed, asks);
      if (result.changes.length > 0 || execution.failed.length > 0) {
        log.info({ planned: result.changes.length, applied: execution.applied.length, failed: execution.failed.length, sleepMs }, 'pass finished');
      }
      return {
        changes: result.changes,
        applied: execution.applied.length,
        failed: execution.failed.length,
        problems: [...blocked, ...execution.problems],
        reported,
        sleepMs,
      };
    } catch (err) {
      // A bug, not a failed change (those are caught by the executor): still, never die.
      log.error({ err }, 'pass failed');
      const sleepMs = this.sleepAfter(true, []);
      return { changes: [], applied: 0, failed: 0, problems: [], reported: false, sleepMs };
    }
  }

  private async passes(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      await this.handoff.releaseIfHealthy(this.desired);
      // Steps taken before discovery that leave only a health check to wait for: the pass
      // (zfs and Docker listings, the report) waits for it too, so as not to compete with the
      // application's own start for the node's CPU; the health change or a new view wakes it.
      if ((await this.handoffSteps()) && this.handoff.awaitingHealth) await this.sleep(RELEASE_WAIT_MS);
      if (this.stopping.signal.aborted) return;
      const { sleepMs } = await this.runPass();
      if (this.stopping.signal.aborted) return;
      await this.sleep(sleepMs);
    }
  }

  /**
   * The pass's discovery — or null as soon as a view arrives in which a migration to this node
   * reached `handoff` that the pass's own view (`desired`) has not (handoff-steps.ts
   * `newlyDue`). Between the source's stop and the target's release every ms is the clients'
   * pause, and this pass's listings and changes (0.1–0.6 s at load) would come first. The
   * listings still running are read-only and their result is dropped (Promise.race keeps a late
   * rejection handled); the pass has planned and applied nothing.
   */
  private async discoverUnlessHandedOff(desired: AgentDesired | null, discovering: Promise<RawObserved>): Promise<RawObserved | null> {
    let giveUp: () => void = () => {};
    const handedOff = new Promise<null>((resolve) => (giveUp = () => resolve(null)));
    this.offerView = (next) => {
      if (this.handoff.newlyDue(desired, next)) giveUp();
    };
    try {
      return await Promise.race([discovering, handedOff]);
    } finally {
      this.offerView = null;
    }
  }

  /** A migration newly handed off here: the target's first steps before this pass's discovery (handoff-steps.ts); whether any applied. Never throws. */
  private async handoffSteps(): Promise<boolean> {
    try {
      return await this.handoff.beforeDiscovery(this.desired);
    } catch (err) {
      // The pass that follows plans the same steps from what it discovers.
      this.deps.log.warn({ err }, 'handoff steps before discovery failed');
      return false;
    }
  }

  private planContext(desired: AgentDesired | null): PlanContext {
    const { deps } = this;
    return {
      nodeUuid: deps.identity.uuid,
      address: deps.identity.address,
      ...(deps.serviceSubnet !== undefined ? { serviceSubnet: deps.serviceSubnet } : {}),
      now: deps.clock.now(),
      warmStart: deps.gates != null,
      fenced: deps.fence?.gating(desired) ?? false,
      ...(deps.fileRoots ?? {}),
    };
  }

  private async sleep(ms: number): Promise<void> {
    if (this.wakePending) {
      this.wakePending = false;
      return;
    }
    this.wakeController = new AbortController();
    await this.deps.clock.sleep(ms, this.wakeController.signal);
    this.wakePending = false;
  }

  private sleepAfter(changed: boolean, asks: (number | null)[]): number {
    const { pollIntervalMs } = this.deps;
    if (changed) {
      let ms = backoffDelay({ initialMs: FIRST_UNCONVERGED_MS, factor: 4, capMs: pollIntervalMs }, this.unconverged + 1);
      this.unconverged = Math.min(this.unconverged + 1, 10);
      // The planner may ask for sooner even while unconverged (a migration handed off here:
      // every pass saved shortens the move's downtime).
      for (const ask of asks) if (ask !== null) ms = Math.min(ms, Math.max(FIRST_UNCONVERGED_MS, ask));
      return ms;
    }
    this.unconverged = 0;
    const jitter = 0.8 + 0.4 * (this.deps.random ?? Math.random)();
    let ms = Math.round(pollIntervalMs * jitter);
    for (const ask of asks) if (ask !== null) ms = Math.min(ms, Math.max(0, ask));
    return ms;
  }

  /**
   * While a pass's changes run longer than the poll interval — a stop waits out its container's
   * grace period, 10 s by default, and every change planned with it waits too — the pass's report
   * is sent again every poll interval, so the node's lease stays renewed (docs/DESIGN.md §4, §18).
   * Without it a node stopping a container was silent past its lease: the control service
   * replaced its instances (more stops) and held an update's route until it reported again, and
   * the agent fenced itself. What is re-sent is what this pass's discovery saw (the changes'
   * outcome is the next pass's). Up to HEARTBEAT_MAX_MS: a pass stuck longer on a hung docker or
   * zfs call stops renewing, and the lease lapses as §18 intends.
   */
  private async heartbeat(report: ReturnType<typeof buildReport>, executing: Promise<unknown>, log: Logger): Promise<void> {
    if (report === null) return;
    const { clock, pollIntervalMs } = this.deps;
    let done = false;
    const ended = executing.then(
      () => void (done = true),
      () => void (done = true),
    );
    const began = clock.monotonic();
    while (!done && !this.stopping.signal.aborted) {
      const tick = new AbortController();
      await Promise.race([clock.sleep(pollIntervalMs, tick.signal), ended]);
      tick.abort();
      if (done || this.stopping.signal.aborted) return;
      if (clock.monotonic() - began > HEARTBEAT_MAX_MS) {
        log.warn({ runningMs: Math.round(clock.monotonic() - began) }, 'a pass has run too long: reports stop until it ends');
        return;
      }
      await this.report(report, log);
    }
  }

  private async report(report: ReturnType<typeof buildReport>, log: Logger): Promise<boolean> {
    if (report === null) {
      log.warn('report skipped: part of the node could not be observed');
      return false;
    }
    try {
      const sentAt = this.deps.clock.now();
      const answer = await this.deps.channel.report(report, this.stopping.signal);
      await this.deps.fence?.acked(sentAt, answer.version);
      return true;
    } catch (err) {
      if (!this.stopping.signal.aborted) log.warn({ err }, 'report not delivered');
      return false;
    }
  }

  /** The watcher: long-polls the control service; a new version wakes the pass loop. */
  private async watch(): Promise<void> {
    const { deps } = this;
    const log = deps.log.child({ subsystem: 'watcher' });
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      try {
        const after = this.restored ? null : (this.desired?.version ?? null);
        const next = await deps.channel.waitForDesired(deps.identity.uuid, after, deps.longPollMs ?? 25_000, this.stopping.signal);
        failures = 0;
        if (this.desired === null || this.restored || next.version !== this.desired.version) {
          if (this.restored) log.info({ version: next.version, saved: this.desired?.version }, 'desired configuration received: replaces the saved one');
          else log.debug({ version: next.version }, 'desired configuration received');
          this.setDesired(next);
          deps.desiredCache?.save(next);
        }
      } catch (err) {
        if (this.stopping.signal.aborted) return;
        failures += 1;
        const backoff = backoffDelay({ initialMs: 250, capMs: deps.pollIntervalMs }, failures);
        if (failures === 1 || failures % 20 === 0) log.warn({ err, failures }, 'desired configuration not received');
        await deps.clock.sleep(backoff, this.stopping.signal);
      }
    }
  }
}

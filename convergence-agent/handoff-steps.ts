/**
 * The target's side of a migration's handoff, between the loop's passes (docs/DESIGN.md §34):
 * every step here would otherwise wait for a pass's discovery, and between the source's stop
 * and the target's `release` every ms is the client's pause.
 *
 * - `beforeDiscovery`: a view in which a migration to this node just reached `handoff` is
 *   planned against the last pass's observation and only the target's first steps are
 *   applied (the datasets writable and mounted, the warm-started container's gate opened;
 *   plan/handoff.ts says why that is safe) — then the pass discovers as usual.
 * - `newlyDue`: such a view arrived while a pass discovers with the view before it; the loop
 *   gives that pass up (nothing planned or applied yet) and takes the steps at once, instead of
 *   after the pass's listings and changes (0.1–0.6 s at load, in ~1 move of 7).
 * - `releaseIfHealthy`: `release` is posted on the first passing health check of the
 *   container a pass named (`releaseWhenHealthy`), from the loop's top *and* from the health
 *   monitor's change itself, so a pass running at that moment does not hold it up. The view
 *   must still have the migration at `handoff` with the same generation; a post the next pass
 *   repeats is answered as already accepted (migration-control.ts).
 */
import type { AgentDesired } from '#common/channel.ts';
import type { Logger } from '#common/log.ts';
import type { Clock } from '#common/clock.ts';
import type { RuntimeContainer } from './container-runtime.ts';
import { healthTargets } from './discover.ts';
import type { Executor } from './execute.ts';
import type { Gates, GateState } from './gate/gates.ts';
import type { HealthMonitor } from './health/monitor.ts';
import { correlations } from './plan/correlation.ts';
import { handoffChanges, handoffKeys } from './plan/handoff.ts';
import type { Change, LocalObserved, PlanResult, ReleaseCandidate } from './plan/types.ts';

export interface HandoffStepsDeps {
  nodeUuid: string;
  executor: Pick<Executor, 'execute'>;
  health: Pick<HealthMonitor, 'health' | 'sync'>;
  gates?: Pick<Gates, 'state'> | null;
  clock: Clock;
  log: Logger;
  /** The pure planner, with the loop's context. */
  plan: (desired: AgentDesired, observed: LocalObserved) => PlanResult;
}

/** What the last pass saw: its planner input and the raw listings health targets are made from. */
export interface PassObservation {
  observed: LocalObserved;
  containers: RuntimeContainer[] | null;
  gates: Record<string, GateState>;
}

export class HandoffSteps {
  private last: PassObservation | null = null;
  /** Migrations (`id:generation`) whose handoff steps ran before a discovery: once each. */
  private readonly stepped = new Set<string>();
  /** The last pass's migrations that wait only for a passing health check. */
  private releases: ReleaseCandidate[] = [];

  constructor(private readonly deps: HandoffStepsDeps) {}

  /**
   * After every pass: what it saw and which containers' first passing check is a release. A
   * pass that planned with a view already at handoff took the target's steps itself (from a
   * fresher observation): they are not taken again before the next discovery.
   */
  passed(observation: PassObservation, releases: ReleaseCandidate[], desired: AgentDesired | null): void {
    this.last = observation;
    this.releases = releases;
    if (desired !== null) for (const k of handoffKeys(desired, this.deps.nodeUuid)) this.stepped.add(k);
  }

  /** True when `containerId`'s first passing check is a migration's release. */
  names(containerId: string): boolean {
    return this.releases.some((r) => r.containerId === containerId);
  }

  /**
   * True when `next` has a migration to this node at `handoff` that `current` (the view a pass
   * is working with) does not, and whose steps have not run: the steps `beforeDiscovery` would
   * take for it now. A pass still discovering with `current` is then better given up (loop.ts).
   */
  newlyDue(current: AgentDesired | null, next: AgentDesired | null): boolean {
    if (next === null || this.last === null) return false;
    const known = new Set(current === null ? [] : handoffKeys(current, this.deps.nodeUuid));
    return handoffKeys(next, this.deps.nodeUuid).some((k) => !known.has(k) && !this.stepped.has(k));
  }

  /** True while a migration handed off here waits only for its container's health check. */
  get awaitingHealth(): boolean {
    return this.releases.length > 0;
  }

  /**
   * A migration to this node newly at `handoff` in `desired`: applies its target's first
   * steps, planned on the last pass's observation. Returns whether it applied anything.
   */
  async beforeDiscovery(desired: AgentDesired | null): Promise<boolean> {
    const { deps } = this;
    if (desired === null || this.last === null) return false;
    const keys = handoffKeys(desired, deps.nodeUuid).filter((k) => !this.stepped.has(k));
    if (keys.length === 0) return false;
    for (const k of keys) this.stepped.add(k);
    // Forget migrations the view no longer has at handoff (bounded memory).
    const current = new Set(handoffKeys(desired, deps.nodeUuid));
    for (const k of this.stepped) if (!current.has(k)) this.stepped.delete(k);

    const began = deps.clock.now();
    const planned = deps.plan(desired, this.last.observed);
    const changes = handoffChanges(desired, keys, planned.changes);
    if (changes.length === 0) return false;
    const execution = await deps.executor.execute(changes, correlations(desired, deps.nodeUuid), { partial: true });
    deps.log.info(
      { migrations: keys, applied: execution.applied.map((c) => c.kind), failed: execution.failed.length, ms: deps.clock.now() - began },
      'handoff steps applied before discovery',
    );
    // Named before its probe starts, so its first passing check finds it.
    if (planned.releaseWhenHealthy) this.releases = planned.releaseWhenHealthy;
    await this.probeOpened(desired, execution.applied);
    return execution.applied.length > 0;
  }

  /**
   * Posts `release` for each named container the health monitor now reports healthy, if the
   * view still has its migration at `handoff` with the same generation. `only`: just that
   * container (a health change). Never throws.
   */
  async releaseIfHealthy(desired: AgentDesired | null, only?: string): Promise<void> {
    const { deps } = this;
    const migrations = desired?.migrations ?? [];
    const due = this.releases.filter(
      (r) =>
        (only === undefined || r.containerId === only) &&
        deps.health.health(r.containerId) === 'healthy' &&
        migrations.some((m) => m.id === r.migrationId && m.generation === r.generation && m.phase === 'handoff'),
    );
    if (due.length === 0) return;
    this.releases = this.releases.filter((r) => !due.includes(r));
    const changes: Change[] = due.map((r) => ({ kind: 'post-migration-update', migrationId: r.migrationId, generation: r.generation, phase: 'release' }));
    try {
      const execution = await deps.executor.execute(changes, new Map(), { partial: true });
      deps.log.info({ migrations: due.map((r) => r.migrationId), applied: execution.applied.length }, 'released on the first passing health check');
    } catch (err) {
      // The next pass plans the release again from what it discovers.
      deps.log.warn({ err }, 'release on the first passing health check failed');
    }
  }

  /** A gate opened here: its application starts now, so its health check starts now. */
  private async probeOpened(desired: AgentDesired, applied: Change[]): Promise<void> {
    const opened = applied.filter((c) => c.kind === 'open-container-gate');
    const { gates: reader } = this.deps;
    if (opened.length === 0 || !reader || this.last === null) return;
    const gates = { ...this.last.gates };
    // Read back as discovery reads it (the marker's time), so the next pass tracks the same start.
    for (const c of opened) gates[c.gateId] = await reader.state(c.gateId).catch((): GateState => ({ state: 'missing' }));
    this.deps.health.sync(healthTargets(desired, this.last.containers, gates));
  }
}

/**
 * Moves never hang without a word: which unfinished migrations the control service ends
 * itself, and why (docs/DESIGN.md §5 "Deadlines"). Pure: desired + observed + now in,
 * decisions out; `Control.tick` applies them with `failMigration`.
 *
 * - Before handoff (pending, pre-copy, cutover) a move is given up when its source is down,
 *   or when its record has not changed for `stallMs` (the source posts progress every
 *   second while it sends, so silence means it is stuck or gone). The source keeps, or
 *   restarts, the application (common/migration-protocol.ts `give-up`).
 * - In handoff a move is rolled back to the source when the target has not made the
 *   application ready within `handoffMs` and either says so (it reports, and its container
 *   of the move's generation is not running healthy) or is down. A target merely unknown is
 *   waited for: a short silence is no reason to move the application twice.
 */
import { controlFailureIn, SOURCE_PHASES, type ControlFailure } from '#common/migration-protocol.ts';
import type { Desired, Migration } from '#common/model.ts';
import type { ObservedState } from './observed-state.ts';

export interface MigrationDeadlines {
  /** A move before handoff whose record has not changed for this long is given up, in ms. */
  stallMs: number;
  /** A move in handoff whose target has not made the application ready this long after handoff is rolled back, in ms. */
  handoffMs: number;
}

export const DEFAULT_MIGRATION_DEADLINES: MigrationDeadlines = { stallMs: 120_000, handoffMs: 120_000 };

export interface OverdueMigration {
  id: string;
  kind: ControlFailure;
  reason: string;
}

const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;

/** The migrations the control service must end now, each with its kind and a reason an operator can act on. */
export function overdueMigrations(desired: Desired, observed: ObservedState, now: number, deadlines: MigrationDeadlines): OverdueMigration[] {
  const out: OverdueMigration[] = [];
  for (const m of desired.migrations) {
    const decision = judge(m, observed, now, deadlines);
    if (decision !== null && controlFailureIn(m.phase) === decision.kind) out.push({ id: m.id, ...decision });
  }
  return out;
}

function judge(m: Migration, observed: ObservedState, now: number, deadlines: MigrationDeadlines): Omit<OverdueMigration, 'id'> | null {
  const quiet = now - m.updated_at;
  if (SOURCE_PHASES.has(m.phase)) {
    const source = silence(observed, m.from);
    if (source.state === 'down') return { kind: 'give-up', reason: `source node ${source.host} is down (silent for ${seconds(source.silentMs ?? quiet)})` };
    if (quiet <= deadlines.stallMs) return null;
    const why = source.state === 'known' ? '' : ` (source node ${source.host} silent for ${seconds(source.silentMs ?? quiet)})`;
    return { kind: 'give-up', reason: `no progress for ${seconds(quiet)} in ${m.phase}${why}` };
  }
  if (m.phase !== 'handoff' || quiet <= deadlines.handoffMs) return null;
  const target = silence(observed, m.to);
  if (target.state === 'down') return { kind: 'roll-back', reason: `rolled back: target node ${target.host} is down (silent for ${seconds(target.silentMs ?? quiet)})` };
  if (target.state !== 'known') return null;
  // XXX: a move of datasets alone is not rolled back: readiness of a dataset on the target is
  // not in the report as a single fact yet, and its target is rarely what fails.
  if (m.application === null) return null;
  const name = m.application;
  const record = observed.get(m.to)!;
  const container = record.containers.get(name);
  const ready = container !== undefined && container.generation === m.generation && container.running && (container.health === 'healthy' || container.health === 'unknown');
  if (ready) return null;
  const problem = record.report.problems.find((p) => p.kind === 'failed' && p.subject === `container:drover-${name}`);
  const state = container === undefined ? 'no container' : !container.running ? 'not running' : `health ${container.health}`;
  return { kind: 'roll-back', reason: `rolled back: target node ${target.host} did not make ${name} ready within ${seconds(deadlines.handoffMs)} (${problem?.reason ?? state})` };
}

function silence(observed: ObservedState, uuid: string): { state: 'known' | 'unknown' | 'down'; host: string; silentMs: number | null } {
  return { state: observed.stateOf(uuid) ?? 'unknown', host: observed.get(uuid)?.report.host ?? uuid, silentMs: observed.silentMs(uuid) };
}

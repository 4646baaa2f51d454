/**
 * The migration protocol: the one definition of a migration's phases, their legal order,
 * who may post each step, and how a posted step is judged against the record. The control
 * service judges with it, the agents read phases with it, and every fake answers with it
 * (convergence-agent/migration/DESIGN.md is the protocol in prose).
 *
 *   pending ─► pre-copy ─► cutover ─► handoff ─► release ─► done
 *      │          └──────────┴─► failed      (the source is still primary)
 *      └─► failed   (the control service alone: the application went before the move began)
 *
 * The control service may also end a move itself (`ControlFailure`): give up on it before
 * handoff (cancelled, deadline passed, source silent) and roll back a handoff whose target
 * never made the application ready.
 *
 * Pure: no I/O, no clock (time is the `now` argument), no logging.
 */
import type { MigrationUpdate } from './channel.ts';
import { DroverError } from './errors.ts';
import type { Migration } from './model.ts';

/**
 * Every phase, in the order a successful move passes them; `failed` is the side exit.
 * common/model.ts builds its `MigrationPhase` schema from this list.
 */
export const MIGRATION_PHASES = [
  'pending', // accepted, waiting for the source agent
  'pre-copy', // rounds of send while the application runs
  'cutover', // proxies hold; source stopped; final delta in flight
  'handoff', // target becomes primary and starts the application
  'release', // proxies forward to the target once healthy
  'done',
  'failed', // ended without a move; the source is still primary
] as const;
export type MigrationPhase = (typeof MIGRATION_PHASES)[number];

/** Who may post a step: the migration's `from` node, its `to` node, or the control service itself. */
export type MigrationParty = 'source' | 'target' | 'control';

/**
 * Why the control service may fail a migration itself:
 * - `give-up`: before handoff (the operator cancelled, the deadline passed, the source went
 *   silent, the application was deleted). The source is still primary; nothing flips. A source
 *   job still running reads `failed` back at its next step and restores the application.
 * - `roll-back`: at handoff, before release: the target could not make the application ready
 *   by the deadline. The placement flips back to the source in the same store write. Safe to
 *   lose: the routes held every connection until release, so no client reached the target's
 *   copy; the target's planner stops it and keeps the data read-only once it is no longer
 *   primary.
 */
export type ControlFailure = 'give-up' | 'roll-back';

export interface MigrationTransition {
  from: MigrationPhase;
  to: MigrationPhase;
  by: MigrationParty;
  /** Set for the control service's own `failed` only. */
  why?: ControlFailure;
}

/**
 * Every legal phase change and the one party that may make it. The source drives the move
 * up to and including `handoff` (and is the only one that may give up: `failed`, while it is
 * still primary); the target posts `release` and `done` once the application runs there.
 * The control service may give up on any move before handoff and roll back one in handoff
 * (see `ControlFailure`); after release the target serves clients and nothing rolls back.
 * Agents never post `pending → failed` (a source that cannot begin posts `pre-copy`, then
 * `failed`).
 */
export const TRANSITIONS: readonly MigrationTransition[] = [
  { from: 'pending', to: 'pre-copy', by: 'source' },
  { from: 'pre-copy', to: 'cutover', by: 'source' },
  { from: 'pre-copy', to: 'failed', by: 'source' },
  { from: 'cutover', to: 'handoff', by: 'source' },
  { from: 'cutover', to: 'failed', by: 'source' },
  { from: 'handoff', to: 'release', by: 'target' },
  { from: 'release', to: 'done', by: 'target' },
  { from: 'pending', to: 'failed', by: 'control', why: 'give-up' },
  { from: 'pre-copy', to: 'failed', by: 'control', why: 'give-up' },
  { from: 'cutover', to: 'failed', by: 'control', why: 'give-up' },
  { from: 'handoff', to: 'failed', by: 'control', why: 'roll-back' },
];

/** Phases after which a migration holds nothing and changes no more. */
export const TERMINAL_PHASES: ReadonlySet<MigrationPhase> = new Set(['done', 'failed']);

/** Phases from which the target is (or is becoming) primary: the source must never run the application again. */
export const HANDED_OFF_PHASES: ReadonlySet<MigrationPhase> = new Set(['handoff', 'release', 'done']);

/** Phases before handoff in which the source still owns the move. */
export const SOURCE_PHASES: ReadonlySet<MigrationPhase> = new Set(['pending', 'pre-copy', 'cutover']);

/** True for `done` and `failed`. Takes any string, so a client holding a phase as plain text asks the same question. */
export function isTerminal(phase: string): boolean {
  return (TERMINAL_PHASES as ReadonlySet<string>).has(phase);
}

/** True when `by` may move a migration from phase `from` to phase `to`. */
export function mayTransition(from: MigrationPhase, to: MigrationPhase, by: MigrationParty): boolean {
  return TRANSITIONS.some((t) => t.from === from && t.to === to && t.by === by);
}

/** How the control service may fail a migration in `phase` itself, or null when it may not. */
export function controlFailureIn(phase: MigrationPhase): ControlFailure | null {
  return TRANSITIONS.find((t) => t.from === phase && t.to === 'failed' && t.by === 'control')?.why ?? null;
}

/** The phases an agent may post next from each phase (the control service's own change excluded). */
export const NEXT_PHASES: Readonly<Record<MigrationPhase, readonly MigrationPhase[]>> = agentSteps();

function agentSteps(): Record<MigrationPhase, readonly MigrationPhase[]> {
  const next = {} as Record<MigrationPhase, MigrationPhase[]>;
  for (const phase of MIGRATION_PHASES) next[phase] = TRANSITIONS.filter((t) => t.from === phase && t.by !== 'control').map((t) => t.to);
  return next;
}

/**
 * The agent that may post an update carrying `phase`: the one that posts the change into it
 * (a repeat of the current phase is that party's progress report or retry). For `pending`,
 * which no agent enters, the source, whose turn it is.
 */
export function posterOf(phase: MigrationPhase): 'source' | 'target' {
  const into = TRANSITIONS.find((t) => t.to === phase && t.by !== 'control');
  return into?.by === 'target' ? 'target' : 'source';
}

/** What an accepted update did: a phase change, a report within the phase, or nothing (a finished phase repeated). */
export type UpdateEffect = 'advanced' | 'progress' | 'unchanged';

export type UpdateVerdict =
  | { ok: true; effect: UpdateEffect; migration: Migration }
  | { ok: false; error: DroverError };

/** The refusal codes of `judgeUpdate`; each is a conflict (HTTP 409) in the control service's API. */
export type UpdateRefusal = 'DROVER_MIGRATION_STALE_GENERATION' | 'DROVER_MIGRATION_BAD_TRANSITION' | 'DROVER_MIGRATION_WRONG_NODE';

/**
 * Judges an agent's update against the record as the control service has it, checking in
 * this order:
 * 1. fencing: `update.generation` must equal the record's (else DROVER_MIGRATION_STALE_GENERATION);
 * 2. a repeat of a terminal phase is accepted with the record unchanged (`effect: 'unchanged'`,
 *    the same object), from any node: agents retry a step whose answer they lost;
 * 3. order: a different phase must be a legal next phase for an agent (else
 *    DROVER_MIGRATION_BAD_TRANSITION); the same phase is a progress report;
 * 4. turn: `update.node_uuid` must be the record's `from` (source) or `to` (target) as
 *    `posterOf(update.phase)` says (else DROVER_MIGRATION_WRONG_NODE).
 *
 * The accepted record takes the update's progress fields (an omitted field keeps its value;
 * `null` clears the nullable ones), `updated_at = now`, `cutover_started_at = now` on
 * entering cutover and `cutover_ms` (since then) on entering release. Pure; never throws:
 * a refusal is returned, its `detail` naming the record and what was wrong. `now` is in
 * milliseconds since the epoch.
 */
export function judgeUpdate(record: Migration, update: MigrationUpdate, now: number): UpdateVerdict {
  const { id } = record;
  if (update.generation !== record.generation) {
    return refuse('DROVER_MIGRATION_STALE_GENERATION', `Migration ${id} has generation ${record.generation}; an update for generation ${update.generation} is stale.`, {
      id,
      generation: record.generation,
      got: update.generation,
    });
  }
  const same = update.phase === record.phase;
  if (same && isTerminal(record.phase)) return { ok: true, effect: 'unchanged', migration: record };
  if (!same && !NEXT_PHASES[record.phase].includes(update.phase)) {
    return refuse('DROVER_MIGRATION_BAD_TRANSITION', `Migration ${id} cannot go from ${record.phase} to ${update.phase}.`, { id, phase: record.phase, requested: update.phase });
  }
  const expected = posterOf(update.phase) === 'source' ? record.from : record.to;
  if (update.node_uuid !== expected) {
    return refuse('DROVER_MIGRATION_WRONG_NODE', `Only node ${expected} may report ${update.phase} for migration ${id}.`, {
      id,
      phase: update.phase,
      node_uuid: update.node_uuid,
      expected,
    });
  }
  const migration: Migration = {
    ...record,
    phase: update.phase,
    round: update.round ?? record.round,
    bytes_sent: update.bytes_sent ?? record.bytes_sent,
    bytes_total: update.bytes_total === undefined ? record.bytes_total : update.bytes_total,
    rate_bytes_per_second: update.rate_bytes_per_second === undefined ? record.rate_bytes_per_second : update.rate_bytes_per_second,
    ...roundFigures(record, update),
    ...(same ? {} : { phases: [...(record.phases ?? []), { phase: update.phase, at: now }].slice(-32) }),
    error: update.error === undefined ? record.error : update.error,
    updated_at: now,
    cutover_started_at: !same && update.phase === 'cutover' ? now : record.cutover_started_at,
    cutover_ms: !same && update.phase === 'release' && record.cutover_started_at !== null ? now - record.cutover_started_at : record.cutover_ms,
  };
  return { ok: true, effect: same ? 'progress' : 'advanced', migration };
}

/** The current round's figures: the update's when it carries them, else the record's (absent stays absent). */
function roundFigures(record: Migration, update: MigrationUpdate): Pick<Migration, 'round_bytes_sent' | 'round_bytes_total'> {
  const sent = update.round_bytes_sent ?? record.round_bytes_sent;
  const total = update.round_bytes_total === undefined ? record.round_bytes_total : update.round_bytes_total;
  return { ...(sent === undefined ? {} : { round_bytes_sent: sent }), ...(total === undefined ? {} : { round_bytes_total: total }) };
}

function refuse(code: UpdateRefusal, message: string, detail: Record<string, unknown>): UpdateVerdict {
  return { ok: false, error: new DroverError(code, message, { detail }) };
}

/**
 * Judges the control service's own `failed` (`ControlFailure`) against the record: accepted
 * only when the record's phase allows exactly that kind (`give-up` before handoff, `roll-back`
 * at handoff); the failed record carries `reason` and `updated_at = now`. A roll-back also
 * means flipping the placement back to `from`, which the caller does in the same write.
 * Pure; never throws: a refusal (DROVER_MIGRATION_BAD_TRANSITION, 409) says why in words an
 * operator can act on.
 */
export function judgeControlFailure(record: Migration, kind: ControlFailure, reason: string, now: number): UpdateVerdict {
  const { id, phase } = record;
  if (controlFailureIn(phase) !== kind) {
    const why = isTerminal(phase)
      ? `it already ended (${phase})`
      : HANDED_OFF_PHASES.has(phase)
        ? `it handed off (phase ${phase}): node ${record.to} is primary now`
        : `it is in ${phase}`;
    const verb = kind === 'give-up' ? 'be given up' : 'be rolled back';
    return refuse('DROVER_MIGRATION_BAD_TRANSITION', `Migration ${id} cannot ${verb}: ${why}.`, { id, phase, requested: 'failed', kind });
  }
  return { ok: true, effect: 'advanced', migration: { ...record, phase: 'failed', error: reason, updated_at: now } };
}

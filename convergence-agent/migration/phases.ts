/**
 * The migration phase machine as the agents read it (DESIGN.md beside this file). Pure.
 *
 * The protocol itself — phases, legal order, who posts what, generation fencing — is
 * common/migration-protocol.ts, which the control service enforces; these functions are
 * what an agent decides from the phase it reads back: where a source job (re)starts, and
 * what a refused step means. The one rule everything else follows: the source restores the
 * application only after the control service has *accepted* `failed`, and never once the
 * record reached `handoff`.
 */
import { HANDED_OFF_PHASES, NEXT_PHASES, posterOf, type MigrationPhase } from '#common/migration-protocol.ts';

export type SourceStart =
  /** pending or pre-copy: (re)start the rounds; safe, the application still runs here. */
  | { action: 'pre-copy'; postPreCopy: boolean }
  /** cutover, and no job of this process is in it (the agent restarted, or a job gave up): abort back here. */
  | { action: 'abort-cutover' }
  /** The record is past the source's part: nothing to do. */
  | { action: 'none'; why: 'handed-off' | 'failed' };

/** Where a source job starts, from the record's phase as the control service has it now. */
export function sourceStart(phase: MigrationPhase): SourceStart {
  switch (phase) {
    case 'pending':
      return { action: 'pre-copy', postPreCopy: true };
    case 'pre-copy':
      return { action: 'pre-copy', postPreCopy: false };
    case 'cutover':
      return { action: 'abort-cutover' };
    case 'handoff':
    case 'release':
    case 'done':
      return { action: 'none', why: 'handed-off' };
    case 'failed':
      return { action: 'none', why: 'failed' };
  }
}

export type StepOutcome =
  /** The record is at the phase we asked for: our step landed (perhaps an earlier try's). */
  | 'accepted'
  /** The record reached handoff or beyond: the target owns the application now. */
  | 'handed-off'
  /** The record failed: the source is primary again. */
  | 'failed'
  /** Anything else (another phase, a stale generation): stop acting on this record. */
  | 'stop';

/**
 * What a refused (409) or unanswered step means, once the record has been read again:
 * `requested` is what we posted, `record` the phase the control service has.
 */
export function outcomeOf(requested: MigrationPhase, record: MigrationPhase): StepOutcome {
  if (record === requested) return 'accepted';
  if (HANDED_OFF_PHASES.has(record)) return 'handed-off';
  if (record === 'failed') return 'failed';
  return 'stop';
}

/**
 * The target's next step: the phase the protocol has the target post next — `release` once
 * the application (or, for a dataset alone, every dataset) is ready here, then `done`. Null
 * when there is nothing to post.
 */
export function targetStep(phase: MigrationPhase, ready: boolean): 'release' | 'done' | null {
  const next = NEXT_PHASES[phase].find((p) => posterOf(p) === 'target');
  if (next === 'release') return ready ? 'release' : null;
  return next === 'done' ? 'done' : null;
}

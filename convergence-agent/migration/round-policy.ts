/**
 * When pre-copy stops (docs/DESIGN.md §5 step 1): rounds repeat while each delta shrinks, until
 * a round is small, bounded in rounds and in time. Also the progress figures the source
 * posts. Pure: no clock, no I/O; times are milliseconds, sizes bytes.
 */

export interface RoundPolicy {
  /** A round that sent fewer bytes than this is small: the final delta will be smaller still. */
  smallBytes: number;
  /** …or that streamed for less than this. */
  smallMs: number;
  /** At most this many pre-copy rounds (the first is usually the full send). */
  maxRounds: number;
  /** Pre-copy ends after this long, whatever the deltas. */
  maxMs: number;
}

export const DEFAULT_ROUND_POLICY: RoundPolicy = {
  smallBytes: 8 * 1024 * 1024,
  smallMs: 500,
  maxRounds: 8,
  maxMs: 30 * 60_000,
};

/** One finished pre-copy round, all of the migration's datasets together. */
export interface Round {
  bytes: number;
  /** Time spent streaming (snapshot, send, receive, verify) in this round. */
  ms: number;
}

export type RoundDecision =
  | { next: 'round' }
  | { next: 'cutover'; why: 'small' | 'not-shrinking' | 'max-rounds' | 'max-time' };

/**
 * After a round: another one, or cutover (and why). `rounds` are the rounds so far, oldest
 * first (at least one); `elapsedMs` is the time since pre-copy began.
 */
export function afterRound(rounds: readonly Round[], elapsedMs: number, policy: RoundPolicy = DEFAULT_ROUND_POLICY): RoundDecision {
  const last = rounds.at(-1);
  if (last === undefined) return { next: 'round' };
  if (last.bytes < policy.smallBytes || last.ms < policy.smallMs) return { next: 'cutover', why: 'small' };
  const previous = rounds.at(-2);
  // A delta that no longer shrinks means the application writes as fast as we send:
  // more rounds would not make the final one smaller.
  if (previous !== undefined && last.bytes >= previous.bytes) return { next: 'cutover', why: 'not-shrinking' };
  if (rounds.length >= policy.maxRounds) return { next: 'cutover', why: 'max-rounds' };
  if (elapsedMs >= policy.maxMs) return { next: 'cutover', why: 'max-time' };
  return { next: 'round' };
}

/**
 * The size estimate shown beside `bytes_sent`: what is sent so far plus what the current
 * round is expected to send — the datasets' referenced bytes for a first (full) round, the
 * previous delta after that — never below what was really sent.
 */
export function bytesTotal(input: { sentBeforeRound: number; sentInRound: number; referencedBytes: number; rounds: readonly Round[] }): number {
  const expected = input.rounds.length === 0 ? input.referencedBytes : (input.rounds.at(-1)?.bytes ?? 0);
  return Math.max(input.sentBeforeRound + expected, input.sentBeforeRound + input.sentInRound);
}

/** Bytes per second over a round so far; null before anything could be measured. */
export function rateOf(bytes: number, ms: number): number | null {
  return ms > 0 ? Math.round((bytes * 1000) / ms) : null;
}

/** Progress goes to the control service (one store write each) at most every `minIntervalMs`. */
export function progressDue(lastPostedAt: number | null, now: number, minIntervalMs: number): boolean {
  return lastPostedAt === null || now - lastPostedAt >= minIntervalMs;
}

/**
 * drover's own restart policy (Docker's is never set): decides whether a crashed, exited
 * or unhealthy container is restarted now, later (capped exponential backoff), or never.
 * Pure; times are milliseconds.
 */
import { backoffDelay } from '#common/backoff.ts';
import type { RestartPolicy } from '#common/model.ts';
import type { LocalContainer } from './types.ts';

export const RESTART_BACKOFF = {
  /** Delay before the first restart after a failure. */
  baseMs: 1_000,
  /** The delay doubles per consecutive restart, up to this. */
  capMs: 30_000,
  /** A container that ran at least this long counts as stable: the backoff starts over. */
  stableAfterMs: 60_000,
} as const;

export type RestartDecision =
  | { action: 'none'; reason: string | null }
  | { action: 'wait'; reason: string; retryInMs: number }
  | { action: 'restart'; reason: 'crashed' | 'exited' | 'unhealthy' | 'never-started'; consecutiveRestarts: number };

/** Backoff before restart number `consecutive + 1`. */
export function restartDelayMs(consecutive: number): number {
  // No jitter: the planner is pure, and one node's restarts need no spreading.
  return backoffDelay({ initialMs: RESTART_BACKOFF.baseMs, capMs: RESTART_BACKOFF.capMs }, consecutive + 1);
}

/** Pure: what to do about `container` (already matching its desired spec) under `policy`. */
export function decideRestart(container: LocalContainer, policy: RestartPolicy, now: number): RestartDecision {
  if (container.status === 'created') {
    // Created by a start-container whose start failed: finish the job, it is not a failure.
    return { action: 'restart', reason: 'never-started', consecutiveRestarts: container.consecutiveRestarts };
  }
  const unhealthy = container.running && container.health === 'unhealthy';
  const stopped = !container.running && (container.status === 'exited' || container.status === 'dead');
  if (!unhealthy && !stopped) return { action: 'none', reason: null };

  const failed = unhealthy || container.exitCode !== 0 || container.oomKilled;
  const what = unhealthy ? 'unhealthy' : failed ? `exited with code ${container.exitCode ?? '?'}` : 'exited with code 0';
  if (policy.name === 'never') return { action: 'none', reason: `${what}; restart policy is never` };
  if (policy.name === 'on-failure') {
    if (!failed) return { action: 'none', reason: `${what}; restart policy is on-failure` };
    const max = policy.maximum_retry_count;
    if (max !== undefined && container.restartCount >= max) {
      return { action: 'none', reason: `${what}; restarted ${container.restartCount} times, the maximum` };
    }
  }

  // A container that ran long enough before it stopped starts a fresh backoff.
  const ranFor =
    container.startedAt === null ? 0 : (unhealthy ? now : (container.finishedAt ?? now)) - container.startedAt;
  const consecutive = ranFor >= RESTART_BACKOFF.stableAfterMs ? 0 : container.consecutiveRestarts;
  const reason = unhealthy ? 'unhealthy' : failed ? 'crashed' : 'exited';
  if (!unhealthy) {
    const due = (container.finishedAt ?? now) + restartDelayMs(consecutive);
    if (due > now) return { action: 'wait', reason: `${what}; restarting after backoff`, retryInMs: due - now };
  }
  return { action: 'restart', reason, consecutiveRestarts: consecutive + 1 };
}

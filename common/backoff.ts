/**
 * Capped, jittered exponential backoff: the one retry schedule in drover (docs/DESIGN.md
 * §12; Kubernetes' `wait.Backoff`). Pure: the jitter source is an input, and nothing here
 * reads the clock — a caller waits the delay with its Clock, or compares it with `clock.now()`.
 */

export interface Backoff {
  /** Delay before the first retry, ms. */
  initialMs: number;
  /** Growth per retry; default 2. */
  factor?: number;
  /** Longest delay, ms (before jitter). */
  capMs: number;
  /**
   * Fraction in [0, 1] taken off at random: the delay is scaled by a factor drawn from
   * [1 − jitter, 1), so retries of many clients spread out and never exceed the cap. Default 0.
   */
  jitter?: number;
}

/**
 * Pure: the delay (ms, an integer) before retry number `attempt` (1 is the first retry):
 * `min(capMs, initialMs × factor^(attempt − 1))`, scaled by the jitter. `random` is a source
 * in [0, 1) and is called only when `jitter` is set.
 */
export function backoffDelay(policy: Backoff, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  // factor^exponent overflows to Infinity for large attempts, which the cap absorbs.
  const capped = Math.min(policy.capMs, policy.initialMs * (policy.factor ?? 2) ** exponent);
  const jitter = policy.jitter ?? 0;
  return Math.round(jitter > 0 ? capped * (1 - jitter + jitter * random()) : capped);
}

/**
 * Failures per key (a change, a peer, a port) with the time each may run again: the state a
 * caller keeps to hold a failing step back while doing other work. Times are the caller's
 * `now` (ms); `T` is whatever the caller wants remembered with the failure (its last error).
 */
export class KeyedBackoff<T = undefined> {
  private readonly records = new Map<string, { failures: number; retryAt: number; detail: T }>();

  constructor(
    private readonly policy: Backoff,
    private readonly random: () => number = Math.random,
  ) {}

  /** Records one more failure of `key` at `now`; returns its count and the delay before the next try. */
  failed(key: string, now: number, detail: T): { failures: number; delayMs: number; retryAt: number } {
    const failures = (this.records.get(key)?.failures ?? 0) + 1;
    const delayMs = backoffDelay(this.policy, failures, this.random);
    this.records.set(key, { failures, retryAt: now + delayMs, detail });
    return { failures, delayMs, retryAt: now + delayMs };
  }

  /** A success: `key` starts over. */
  succeeded(key: string): void {
    this.records.delete(key);
  }

  /** The failure holding `key` back at `now` (with the ms left to wait), or null when it may run. */
  held(key: string, now: number): { failures: number; waitMs: number; detail: T } | null {
    const record = this.records.get(key);
    if (!record || record.retryAt <= now) return null;
    return { failures: record.failures, waitMs: record.retryAt - now, detail: record.detail };
  }

  /** Forgets every key not in `keys` (steps no longer wanted keep no backoff). */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.records.keys()) if (!keys.has(key)) this.records.delete(key);
  }
}

/**
 * Time as an input (docs/DESIGN.md §12): the loop, the health monitor and the executor's
 * backoff read time only through a Clock, so tests drive them with a fake one.
 */
import { sleep } from '#common/sleep.ts';

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms` milliseconds, or early (without error) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleep(ms, signal),
};

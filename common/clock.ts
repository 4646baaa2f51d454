/**
 * Time as an input (docs/DESIGN.md §12): every loop, retry and deadline in drover reads time
 * and waits through a Clock, so tests drive it with `testing/fake-clock.ts` instead of sleeping.
 * `systemClock` is the only place that reads the real clock for them.
 */

export interface Clock {
  /** Milliseconds since the epoch (wall time: timestamps, ages compared across processes). */
  now(): number;
  /** Milliseconds from an arbitrary origin that never goes back (elapsed times, hold deadlines). */
  monotonic(): number;
  /**
   * Resolves after `ms` milliseconds, or early (without error) when `signal` aborts; a signal
   * already aborted resolves at once. Never rejects.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, ms));
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/**
 * setTimeout over a Clock: runs `fn` once `ms` have passed on `clock`, unless the returned
 * cancel is called first (after which `fn` never runs).
 */
export function runAfter(clock: Clock, ms: number, fn: () => void): () => void {
  const cancelled = new AbortController();
  void clock.sleep(ms, cancelled.signal).then(() => {
    if (!cancelled.signal.aborted) fn();
  });
  return () => cancelled.abort();
}

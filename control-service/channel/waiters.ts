/**
 * The long-poll machinery: a list of waiting requests, all woken on a change.
 *
 * Versions handed to long-polls are "at least the wall clock in ms" (`nextVersion`): they
 * increase within a process and are newer than anything an earlier process handed out, so an
 * agent that polls with an `after` from before a restart is answered at once.
 */
export class Waiters {
  private readonly waiting = new Set<() => void>();

  get size(): number {
    return this.waiting.size;
  }

  /** Resolves on the next `wake`, after `timeoutMs`, or when `signal` aborts, whichever is first. */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      this.waiting.add(done);
    });
  }

  wake(): void {
    for (const done of [...this.waiting]) done();
  }
}

/** A version above `previous` and at least the current time in milliseconds. */
export function nextVersion(previous: number, now: number = Date.now()): number {
  return Math.max(previous + 1, now);
}

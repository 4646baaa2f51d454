/**
 * One holder per key at a time, in arrival order; different keys run in parallel. A wait
 * may be bounded (`waitMs`) and abandoned (`signal`). Used by the agent's transfers (one
 * replication step per dataset, sender side per peer) and by the volume plugin (Docker may
 * send Mount and Unmount of one volume at once, and each reads then writes the mount counts).
 */
import { runAfter, systemClock, type Clock } from './clock.ts';
import { DroverError, type ErrorCode } from './errors.ts';

interface Waiter {
  grant: () => void;
}

export interface KeyedMutexOptions {
  /** The code of a wait that outlasted `waitMs` (retryable). Default DROVER_BUSY. */
  busyCode?: ErrorCode;
  /** The code of a wait ended by its signal. Default DROVER_ABORTED. */
  abortedCode?: ErrorCode;
  /** What a holder is doing, for the busy message: "another <what> of <key> is running". */
  what?: string;
  /** Times the bounded waits. Default the system clock. */
  clock?: Clock;
}

export interface AcquireOptions {
  waitMs?: number;
  signal?: AbortSignal;
}

export class KeyedMutex {
  private readonly queues = new Map<string, Waiter[]>();

  constructor(private readonly options: KeyedMutexOptions = {}) {}

  /** True while someone holds `key`. */
  isHeld(key: string): boolean {
    return this.queues.has(key);
  }

  /** Keys held or waited for. */
  get busy(): number {
    return this.queues.size;
  }

  /**
   * Resolves with a release function (idempotent) once `key` is ours. Rejects with the busy
   * code (retryable) after `waitMs`, or the aborted code when `signal` aborts; a waiter that
   * gave up leaves the queue.
   */
  acquire(key: string, options: AcquireOptions = {}): Promise<() => void> {
    const queue = this.queues.get(key);
    if (!queue) {
      this.queues.set(key, []);
      return Promise.resolve(this.releaser(key));
    }
    return new Promise((resolve, reject) => {
      let cancelTimer: (() => void) | undefined;
      const waiter: Waiter = {
        grant: () => {
          cleanup();
          resolve(this.releaser(key));
        },
      };
      const fail = (err: DroverError): void => {
        cleanup();
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        reject(err);
      };
      const onAbort = (): void => fail(new DroverError(this.options.abortedCode ?? 'DROVER_ABORTED', `waiting for ${key} was aborted`));
      const cleanup = (): void => {
        cancelTimer?.();
        options.signal?.removeEventListener('abort', onAbort);
      };
      if (options.waitMs !== undefined) {
        const what = this.options.what ?? 'holder';
        cancelTimer = runAfter(this.options.clock ?? systemClock, options.waitMs, () =>
          fail(new DroverError(this.options.busyCode ?? 'DROVER_BUSY', `another ${what} of ${key} is running`, { retryable: true, detail: { key } })),
        );
      }
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(waiter);
    });
  }

  /** Runs `fn` while holding `key`; releases when it settles, whether it resolved or threw. */
  async run<T>(key: string, fn: () => Promise<T>, options: AcquireOptions = {}): Promise<T> {
    const release = await this.acquire(key, options);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private releaser(key: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const queue = this.queues.get(key);
      const next = queue?.shift();
      if (next) next.grant();
      else this.queues.delete(key);
    };
  }
}

/**
 * One holder per key at a time, FIFO, with a bounded wait: serializes replication steps
 * for one dataset (sender side per peer, receiver side per dataset).
 */
import { runAfter, systemClock, type Clock } from '#common/clock.ts';
import { DroverError } from '#common/errors.ts';

interface Waiter {
  grant: () => void;
}

export class KeyedMutex {
  private readonly queues = new Map<string, Waiter[]>();

  /** `clock` times the bounded waits. */
  constructor(private readonly clock: Clock = systemClock) {}

  /** True while someone holds `key`. */
  isHeld(key: string): boolean {
    return this.queues.has(key);
  }

  /**
   * Resolves with a release function once `key` is ours. Rejects with DROVER_TRANSFER_BUSY
   * (retryable) after `waitMs`, or DROVER_TRANSFER_ABORTED when `signal` aborts.
   */
  acquire(key: string, options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<() => void> {
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
      const onAbort = (): void => fail(new DroverError('DROVER_TRANSFER_ABORTED', `waiting for ${key} was aborted`));
      const cleanup = (): void => {
        cancelTimer?.();
        options.signal?.removeEventListener('abort', onAbort);
      };
      if (options.waitMs !== undefined) {
        cancelTimer = runAfter(this.clock, options.waitMs, () =>
          fail(new DroverError('DROVER_TRANSFER_BUSY', `another transfer of ${key} is running`, { retryable: true, detail: { key } })),
        );
      }
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(waiter);
    });
  }

  /** Runs `fn` while holding `key`. */
  async run<T>(key: string, fn: () => Promise<T>, options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<T> {
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

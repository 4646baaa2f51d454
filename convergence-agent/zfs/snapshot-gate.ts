/**
 * A `zfs snapshot` runs alone among the agent's pool-changing zfs commands (hold, release,
 * destroy, set): it waits until those in flight on the pool have ended, and those that arrive
 * while it waits or runs wait for it. Commands of the shared kind still run beside each other.
 *
 * Why (bench/RESULTS.md "Continuous replication", 2026-12-07): on zfs-fuse an application's
 * write(2) into a dataset is not answered while a `zfs snapshot` of it is being synced; a
 * snapshot takes 50–150 ms alone but ~1 s now and then, and the slow ones were mostly those
 * a `zfs hold` of another replica's step overlapped. Redis's main thread then waited ~1 s in
 * the FUSE write: the client's write p99 with replication on.
 *
 * No I/O: a promise queue. Waiting holders are served in arrival order; a waiting snapshot
 * blocks later shared holders (it is never starved by a stream of holds).
 */
type Kind = 'shared' | 'exclusive';

interface Waiter {
  kind: Kind;
  grant: () => void;
}

export class SnapshotGate {
  private shared = 0;
  private exclusive = false;
  private readonly queue: Waiter[] = [];

  /** Runs `fn` beside other shared commands, never beside a snapshot. */
  beside<T>(fn: () => Promise<T>): Promise<T> {
    return this.run('shared', fn);
  }

  /** Runs `fn` (the snapshot) with no other gated command in flight. */
  alone<T>(fn: () => Promise<T>): Promise<T> {
    return this.run('exclusive', fn);
  }

  /** Commands running now (tests). */
  get running(): { shared: number; exclusive: boolean; waiting: number } {
    return { shared: this.shared, exclusive: this.exclusive, waiting: this.queue.length };
  }

  private async run<T>(kind: Kind, fn: () => Promise<T>): Promise<T> {
    await this.enter(kind);
    try {
      return await fn();
    } finally {
      this.leave(kind);
    }
  }

  private canEnter(kind: Kind): boolean {
    return kind === 'shared' ? !this.exclusive : !this.exclusive && this.shared === 0;
  }

  private enter(kind: Kind): Promise<void> {
    if (this.queue.length === 0 && this.canEnter(kind)) {
      this.take(kind);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push({ kind, grant: resolve }));
  }

  private take(kind: Kind): void {
    if (kind === 'shared') this.shared += 1;
    else this.exclusive = true;
  }

  private leave(kind: Kind): void {
    if (kind === 'shared') this.shared -= 1;
    else this.exclusive = false;
    // Grant in arrival order while the head of the queue may enter.
    while (this.queue.length > 0 && this.canEnter(this.queue[0]!.kind)) {
      const next = this.queue.shift()!;
      this.take(next.kind);
      next.grant();
    }
  }
}

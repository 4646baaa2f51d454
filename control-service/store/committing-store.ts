/**
 * The part every store shares: a queue of updates applied one after another to the newest
 * document, validated whole, then made durable by the concrete store's `persist`.
 *
 * Group commit: updates that queue up while a write is in flight are applied together and
 * share the next write, so throughput does not fall to one fsync per request. Each change
 * still gets its own version number.
 */
import type { Logger } from '#common/log.ts';
import { DroverError } from '#common/errors.ts';
import type { Desired } from '#common/model.ts';
import type { ConfigStore, StoreSnapshot, Updater } from './config-store.ts';
import { desiredTag } from './encode.ts';
import { emptyDesired, validateDesired } from './validate.ts';

/** A write that finds another process wrote first is applied again this many times at most. */
const MAX_ATTEMPTS = 5;

interface Queued {
  fn: Updater;
  resolve: (snapshot: StoreSnapshot) => void;
  reject: (err: unknown) => void;
}

export abstract class CommittingStore implements ConfigStore {
  private snapshot: StoreSnapshot | null = null;
  private readonly queue: Queued[] = [];
  private draining: Promise<void> | null = null;
  private readonly listeners: ((snapshot: StoreSnapshot) => void)[] = [];
  private closed = false;

  protected constructor(protected readonly log: Logger) {}

  /** Reads what is stored: the version and the (not yet validated) document. */
  protected abstract read(): Promise<{ version: number; desired: unknown }>;
  /** Makes `next` durable (`previous` is what is durable now); resolves only once it is. */
  protected abstract persist(next: StoreSnapshot, previous: StoreSnapshot): Promise<void>;
  protected async release(): Promise<void> {}
  /**
   * After \`persist\` threw DROVER_STORE_CONFLICT: reads the newest document and \`adopt\`s it,
   * so the batch is applied again on top of it. Stores that are alone on their data never conflict.
   */
  protected async refresh(): Promise<void> {}

  async load(): Promise<StoreSnapshot> {
    const stored = await this.read();
    const desired = stored.desired === undefined ? emptyDesired() : validateDesired(stored.desired);
    this.snapshot = { version: stored.version, desired, tag: desiredTag(desired) };
    return this.snapshot;
  }

  current(): StoreSnapshot {
    if (!this.snapshot) throw new DroverError('DROVER_STORE_NOT_LOADED', 'the store was used before load()');
    return this.snapshot;
  }

  update(fn: Updater): Promise<StoreSnapshot> {
    if (this.closed) return Promise.reject(new DroverError('DROVER_STORE_CLOSED', 'the store is closed', { retryable: true }));
    this.current();
    return new Promise((resolve, reject) => {
      this.queue.push({ fn, resolve, reject });
      this.draining ??= this.drain();
    });
  }

  onCommit(listener: (snapshot: StoreSnapshot) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.draining) await this.draining;
    await this.release();
  }

  private async drain(): Promise<void> {
    try {
      // Let the requests that arrive in this tick join the first batch.
      await Promise.resolve();
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        await this.commit(batch);
      }
    } finally {
      // In the same step as the last look at the queue: an update queued after it starts a
      // new drain (clearing this in a later callback stranded an update queued between).
      this.draining = null;
    }
  }

  private async commit(batch: Queued[]): Promise<void> {
    // A store shared with other processes (etcd) may find that another one wrote first: the
    // updates that were accepted are applied again on the newer document.
    for (let attempt = 1; ; attempt++) {
      const conflict = await this.attempt(batch);
      if (conflict === null) return;
      batch = conflict;
      if (attempt >= MAX_ATTEMPTS) {
        const failure = new DroverError('DROVER_STORE_CONFLICT', `the configuration kept changing under this write (${attempt} attempts); try again`, { retryable: true });
        for (const queued of batch) queued.reject(failure);
        return;
      }
      try {
        await this.refresh();
      } catch (err) {
        for (const queued of batch) queued.reject(err);
        return;
      }
    }
  }

  /** One try at a batch; returns the accepted updates when the store refused it as a conflict. */
  private async attempt(batch: Queued[]): Promise<Queued[] | null> {
    const base = this.current();
    let version = base.version;
    let desired: Desired = base.desired;
    const accepted: Queued[] = [];
    for (const queued of batch) {
      const before = desired;
      try {
        const ctx = { version: version + 1, tagMatches: (tag: string) => before === base.desired && tag === base.tag };
        const next = queued.fn(desired, ctx);
        if (next !== null && next !== undefined && next !== desired) {
          desired = validateDesired(next);
          version += 1;
        }
        accepted.push(queued);
      } catch (err) {
        desired = before;
        queued.reject(err);
      }
    }
    if (version !== base.version) {
      const next: StoreSnapshot = { version, desired, tag: desiredTag(desired) };
      try {
        await this.persist(next, base);
      } catch (err) {
        if (err instanceof DroverError && err.code === 'DROVER_STORE_CONFLICT') return accepted;
        // Not the leader (any more): said as such, so the HTTP layer can send the write there.
        const passOn = err instanceof DroverError && (err.code === 'DROVER_NOT_LEADER' || err.code === 'DROVER_NO_LEADER');
        if (!passOn) this.log.error({ err, version }, 'configuration write failed');
        const failure = passOn
          ? err
          : new DroverError('DROVER_STORE_WRITE_FAILED', 'the configuration could not be saved; nothing changed', {
              retryable: true,
              cause: err,
            });
        for (const queued of accepted) queued.reject(failure);
        return null;
      }
      this.adopt(next);
    }
    for (const queued of accepted) queued.resolve(this.current());
    return null;
  }

  /**
   * Makes `snapshot` the current one and tells the listeners: after a commit, and when a
   * store shared with other processes sees a newer document (a follower's watch).
   */
  protected adopt(snapshot: StoreSnapshot): void {
    this.snapshot = snapshot;
    for (const listener of this.listeners) {
      try {
        listener(snapshot);
      } catch (err) {
        this.log.error({ err }, 'commit listener failed');
      }
    }
  }
}

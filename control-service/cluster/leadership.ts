/**
 * One leader among the control services on one etcd (docs/DESIGN.md §28), after Kubernetes'
 * leader election and Patroni's leader key.
 *
 * The election key (`<prefix>leader`, value `{identity, url}`) is created only when absent, in
 * a transaction, under an etcd lease of `ttlSeconds`; who created it leads while the key lives.
 * The leader renews its lease every `ttl/10` (each try bounded by `ttl/5`); a renewal that has not succeeded for
 * `renewDeadlineMs` (< TTL) makes it stop acting at once — `isLeader()` reads the clock
 * itself, so a process resumed after a SIGSTOP is no leader before any timer ran. Every write
 * the leader makes carries `fence()`: etcd checks in the same transaction that the election key
 * still has the create revision it made, so a leader that lost its key writes nothing even
 * when it believes otherwise (Jepsen: a lock alone does not exclude). The others watch the key
 * and campaign when it goes.
 */
import type { Logger } from '#common/log.ts';
import { systemClock, type Clock } from '#common/clock.ts';
import type { EtcdClient, LeaseHandle, TxnCompare } from '../store/etcd-client.ts';

export interface Leadership {
  /** True while this process may act as leader (synchronous, reads the clock). */
  isLeader(): boolean;
  /** The leader's advertised URL, if one is known (this process's own when it leads). */
  leaderUrl(): string | null;
  /** The condition every leader write carries; null when not the leader. */
  fence(): TxnCompare | null;
  /** Called when this process gains (true) or loses (false) the leadership. */
  onChange(listener: (leading: boolean) => void): void;
  /** Why no leader is known, when the last election step failed (etcd unreachable, no quorum); else null. */
  noLeaderReason?(): string | null;
}

/** A control service alone on its store (the file store): always the leader. */
export const SOLE_LEADER: Leadership = {
  isLeader: () => true,
  leaderUrl: () => null,
  fence: () => null,
  onChange: () => undefined,
};

export interface ElectionOptions {
  client: EtcdClient;
  log: Logger;
  /** The election key. */
  key: string;
  /** Who this is (recorded in the key and in every head it writes). */
  identity: string;
  /** Where this service answers, for followers' redirects (asked when campaigning: known once it listens). */
  url: () => string;
  /** Lease TTL, seconds (default 15). */
  ttlSeconds?: number;
  /** Stop acting when no renewal succeeded for this long, ms (default 2/3 of the TTL). */
  renewDeadlineMs?: number;
  clock?: Clock;
}

export class EtcdLeadership implements Leadership {
  private readonly ttlSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly clock: Clock;
  private leading = false;
  private createRevision = 0;
  private renewedAt = 0;
  private lease: LeaseHandle | null = null;
  private leader: { identity: string; url: string } | null = null;
  private readonly listeners: ((leading: boolean) => void)[] = [];
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private watch: { cancel(): Promise<void> } | null = null;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private lastError: string | null = null;

  constructor(private readonly options: ElectionOptions) {
    this.ttlSeconds = options.ttlSeconds ?? 15;
    this.renewDeadlineMs = options.renewDeadlineMs ?? Math.round((this.ttlSeconds * 1000 * 2) / 3);
    this.clock = options.clock ?? systemClock;
  }

  isLeader(): boolean {
    if (!this.leading) return false;
    if (this.clock.now() - this.renewedAt < this.renewDeadlineMs) return true;
    this.stepDown('renew deadline passed');
    return false;
  }

  leaderUrl(): string | null {
    return this.isLeader() ? this.options.url() : (this.leader?.url ?? null);
  }

  noLeaderReason(): string | null {
    return this.lastError;
  }

  leaderIdentity(): string | null {
    return this.isLeader() ? this.options.identity : (this.leader?.identity ?? null);
  }

  fence(): TxnCompare | null {
    return this.isLeader() ? { key: this.options.key, target: 'create', revision: this.createRevision } : null;
  }

  onChange(listener: (leading: boolean) => void): void {
    this.listeners.push(listener);
  }

  /** Starts campaigning (and, once elected, renewing) in the background. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Stops; a leader gives its key up (its lease revoked) so another is elected at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.watch?.cancel();
    if (this.leading) this.stepDown('stopping');
    await this.lease?.revoke();
    this.lease = null;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.leading) await this.renew();
        else await this.campaign();
      } catch (err) {
        this.lastError = `the election could not reach etcd: ${(err as Error).message}`;
        this.options.log.warn({ err }, 'leader election step failed; trying again');
        await this.sleep(Math.min(1000, (this.ttlSeconds * 1000) / 5));
      }
    }
  }

  /** One try at the key; a follower then waits until the key goes (or a while, to look again). */
  private async campaign(): Promise<void> {
    // The lease runs from no earlier than the moment it was asked for.
    const grantedAt = this.clock.now();
    this.lease ??= await this.options.client.grantLease(this.ttlSeconds);
    const value = JSON.stringify({ identity: this.options.identity, url: this.options.url() });
    const res = await this.options.client.txn([{ key: this.options.key, target: 'create', revision: 0 }], [{ put: this.options.key, value, lease: this.lease.id }], [{ get: this.options.key }]);
    this.lastError = null;
    if (res.succeeded) {
      this.createRevision = res.revision;
      this.renewedAt = grantedAt;
      this.leading = true;
      this.leader = { identity: this.options.identity, url: this.options.url() };
      this.options.log.warn({ identity: this.options.identity, createRevision: this.createRevision, ttlSeconds: this.ttlSeconds, renewDeadlineMs: this.renewDeadlineMs }, 'elected leader');
      this.tell(true);
      return;
    }
    // Not elected: our lease is not needed (a new one is granted for the next try).
    const lease = this.lease;
    this.lease = null;
    void lease.revoke();
    const current = res.found[0];
    this.leader = current ? parseLeader(current.value.toString('utf8')) : null;
    await this.waitForChange(res.revision);
  }

  /** Waits for the key to be deleted or replaced after `revision`, at most a TTL. */
  private async waitForChange(revision: number): Promise<void> {
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      this.watch = this.options.client.watchKey(
        this.options.key,
        revision + 1,
        (kv) => {
          this.leader = kv ? parseLeader(kv.value.toString('utf8')) : null;
          if (kv === null) resolve();
        },
        () => resolve(),
      );
      this.timer = setTimeout(resolve, this.ttlSeconds * 1000);
    });
    if (this.timer) clearTimeout(this.timer);
    await this.watch?.cancel();
    this.watch = null;
    this.wake = null;
  }

  private async renew(): Promise<void> {
    const every = (this.ttlSeconds * 1000) / 10;
    // Just elected after a slow grant, or after a failed try: renew at once.
    if (this.clock.now() - this.renewedAt < every) await this.sleep(every);
    if (!this.isLeader() || !this.lease || this.stopped) return;
    const sentAt = this.clock.now();
    const left = this.renewDeadlineMs - (sentAt - this.renewedAt);
    try {
      // One attempt may take a fifth of the TTL at most: a slow one leaves time for others.
      await this.lease.keepAlive(Math.max(100, Math.min(left, (this.ttlSeconds * 1000) / 5)));
      const ms = this.clock.now() - sentAt;
      if (ms > 1000) this.options.log.warn({ ms }, 'leader lease renewed slowly');
      // The lease runs from no earlier than the moment the renewal was sent.
      if (this.leading) this.renewedAt = sentAt;
    } catch (err) {
      if ((err as { code?: string }).code === 'DROVER_ETCD_LEASE_LOST') {
        this.lease = null;
        this.stepDown('lease lost');
      } else {
        this.lastError = `the leader could not renew its lease in etcd: ${(err as Error).message}`;
        this.options.log.warn({ err, msLeft: left }, 'leader lease not renewed');
        this.isLeader(); // steps down once the deadline passed
      }
    }
  }

  private stepDown(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.leader = null; // not known until the next campaign reads the key
    this.options.log.warn({ identity: this.options.identity, why }, 'leadership lost; acting no more');
    // Give the key up if it is still ours, so another is elected without waiting for the TTL.
    const lease = this.lease;
    this.lease = null;
    if (lease) void lease.revoke();
    this.tell(false);
  }

  private tell(leading: boolean): void {
    for (const listener of this.listeners) {
      try {
        listener(leading);
      } catch (err) {
        this.options.log.error({ err }, 'leadership listener failed');
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }
}

function parseLeader(text: string): { identity: string; url: string } | null {
  try {
    const v = JSON.parse(text) as { identity?: unknown; url?: unknown };
    return typeof v.identity === 'string' && typeof v.url === 'string' ? { identity: v.identity, url: v.url } : null;
  } catch {
    return null;
  }
}

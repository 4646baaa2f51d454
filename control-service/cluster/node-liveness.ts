/**
 * Node liveness leases in etcd (docs/DESIGN.md §28), so a newly elected leader knows how long
 * each node has been silent instead of starting blind.
 *
 * The leader keeps one etcd lease per node (TTL: the node lease TTL) with the key
 * `<prefix>alive/<uuid>` on it, created in a fenced transaction at the node's first report
 * and renewed at most every TTL/3 after. A new leader reads the keys and the leases' time
 * left; a node's last report is then no later than `now - (TTL - left) + slack`, and the
 * estimate errs late (slack: a renewal at most TTL/3 behind the last report, etcd's TTL in
 * whole seconds), so a node is never judged more silent than it is. A node without a
 * key was silent for at least a TTL already; it is judged from the election on.
 */
import type { Clock } from '#common/clock.ts';
import { systemClock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import type { EtcdClient, LeaseHandle, TxnCompare } from '../store/etcd-client.ts';

/** A node's lease is renewed at most this often (a third of its TTL, at least a second). */
const renewEveryMs = (ttlSeconds: number) => Math.max(1000, (ttlSeconds * 1000) / 3);

export interface NodeLiveness {
  /** A node reported to this leader. Fire and forget. */
  reported(uuid: string): void;
  /** When each node with a live key last reported (an estimate that errs late). */
  lastSeen(): Promise<Map<string, number>>;
}

export class EtcdNodeLiveness implements NodeLiveness {
  private readonly leases = new Map<string, { lease: LeaseHandle | null; renewedAt: number; busy: boolean }>();
  private readonly clock: Clock;

  constructor(
    private readonly options: {
      client: EtcdClient;
      prefix: string;
      ttlSeconds: number;
      fence: () => TxnCompare | null;
      log: Logger;
      clock?: Clock;
    },
  ) {
    this.clock = options.clock ?? systemClock;
  }

  reported(uuid: string): void {
    const now = this.clock.now();
    const entry = this.leases.get(uuid) ?? { lease: null, renewedAt: 0, busy: false };
    this.leases.set(uuid, entry);
    if (entry.busy || now - entry.renewedAt < renewEveryMs(this.options.ttlSeconds)) return;
    const fence = this.options.fence();
    if (fence === null) return;
    entry.busy = true;
    void this.renew(uuid, entry, fence, now)
      .catch((err: unknown) => {
        entry.lease = null;
        this.options.log.warn({ err, node: uuid }, 'node liveness lease not renewed');
      })
      .finally(() => (entry.busy = false));
  }

  private async renew(uuid: string, entry: { lease: LeaseHandle | null; renewedAt: number }, fence: TxnCompare, now: number): Promise<void> {
    if (entry.lease) {
      try {
        await entry.lease.keepAlive(5000);
        entry.renewedAt = now;
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== 'DROVER_ETCD_LEASE_LOST') throw err;
      }
    }
    const lease = await this.options.client.grantLease(this.options.ttlSeconds);
    const res = await this.options.client.txn([fence], [{ put: `${this.options.prefix}alive/${uuid}`, value: JSON.stringify({ at: now }), lease: lease.id }]);
    if (!res.succeeded) {
      await lease.revoke();
      return;
    }
    entry.lease = lease;
    entry.renewedAt = now;
  }

  async lastSeen(): Promise<Map<string, number>> {
    const { found } = await this.options.client.getPrefix(`${this.options.prefix}alive/`);
    const now = this.clock.now();
    const out = new Map<string, number>();
    for (const kv of found) {
      const left = await this.options.client.leaseTtl(kv.lease);
      if (left < 0) continue;
      // Late by a renewal interval (reports between renewals) and a second (TTLs in whole seconds).
      const slack = renewEveryMs(this.options.ttlSeconds) + 1000;
      out.set(kv.key.slice(`${this.options.prefix}alive/`.length), Math.min(now, now - (this.options.ttlSeconds - left) * 1000 + slack));
    }
    return out;
  }
}

/**
 * Node liveness in etcd (docs/DESIGN.md §28), so a newly elected leader knows how long each
 * node has been silent instead of starting blind.
 *
 * The leader records when it last heard from each node and writes the record as one key,
 * `<prefix>alive` = `{written_at, nodes: {uuid: last report, ms}}`, on an etcd lease of the
 * node lease TTL, every TTL/3 (a fenced transaction, like every leader write). One small write
 * every few seconds, whatever the number of nodes: a lease per node (200 grants at start, then
 * renewals) crowded the leader's own lease renewals out on a loaded machine. A new leader reads
 * the record; a node's last report is then no later than its recorded time plus the write
 * interval (reports after the last write were not recorded), so the estimate adds that
 * interval and a second for the clocks of two hosts: it errs late, and a node is never judged
 * more silent than it is. No record (the lease expired: the old leader was gone for a TTL) or a
 * node not in it: silent for a TTL at least, judged from the election on.
 */
import type { Clock } from '#common/clock.ts';
import { systemClock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import type { EtcdClient, LeaseHandle, TxnCompare } from '../store/etcd-client.ts';

export interface NodeLiveness {
  /** A node reported to this leader. */
  reported(uuid: string): void;
  /** When each node last reported, as far as etcd knows (an estimate that errs late). */
  lastSeen(): Promise<Map<string, number>>;
}

export class EtcdNodeLiveness implements NodeLiveness {
  private readonly heard = new Map<string, number>();
  private readonly clock: Clock;
  private readonly everyMs: number;
  private writtenAt = 0;
  private writing = false;
  private lease: LeaseHandle | null = null;

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
    this.everyMs = Math.max(1000, (options.ttlSeconds * 1000) / 3);
  }

  get key(): string {
    return `${this.options.prefix}alive`;
  }

  reported(uuid: string): void {
    const now = this.clock.now();
    this.heard.set(uuid, now);
    if (this.writing || now - this.writtenAt < this.everyMs) return;
    const fence = this.options.fence();
    if (fence === null) return;
    this.writing = true;
    void this.write(fence, now)
      .catch((err: unknown) => this.options.log.warn({ err }, 'node liveness not written'))
      .finally(() => (this.writing = false));
  }

  private async write(fence: TxnCompare, now: number): Promise<void> {
    this.lease ??= await this.options.client.grantLease(this.options.ttlSeconds);
    const value = JSON.stringify({ written_at: now, nodes: Object.fromEntries(this.heard) });
    const res = await this.options.client.txn([fence], [{ put: this.key, value, lease: this.lease.id }]);
    this.writtenAt = now;
    if (!res.succeeded) return;
    // The record's lease: renewed with each write after the first, so it lapses a TTL after the last.
    await this.lease.keepAlive(5000).catch(() => (this.lease = null));
  }

  async lastSeen(): Promise<Map<string, number>> {
    const { found } = await this.options.client.getMany([this.key]);
    const out = new Map<string, number>();
    if (!found[0]) return out;
    const now = this.clock.now();
    const record = JSON.parse(found[0].value.toString('utf8')) as { nodes?: Record<string, number> };
    for (const [uuid, at] of Object.entries(record.nodes ?? {})) {
      if (typeof at === 'number') out.set(uuid, Math.min(now, at + this.everyMs + 1000));
    }
    return out;
  }
}

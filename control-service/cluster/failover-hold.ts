/**
 * The route hold of a failover (docs/DESIGN.md §18 "The route hold"): the decision's store write
 * flips the application to the chosen node, which changes its route — no target, held — so every
 * proxy holds new connections and closes those still relaying to the failed node. The chosen node
 * may promote only once the record's `routes_held_at` is set: here, when every live proxy has
 * acknowledged a route table at least as new as the one the decision produced, or when
 * `boundMs` passed (`failedNodeBoundMs` when only the failed node's own proxy is missing) (a proxy that has not acknowledged by then is cut off from the control
 * service; the failed node's fence was complete before the decision). Without it, writes sent
 * between the promotion and a proxy applying the new route reached a paused old node and were
 * lost with its copy.
 *
 * Level-triggered: `follow` is called with the records after every commit (and on a restart of
 * the control service the wait starts again from the current route table).
 *
 * The same wait serves a single application's update (docs/DESIGN.md §30, desired/update-holds.ts):
 * its old container is stopped only once the proxies hold its route, with the same bound
 * (`followHolds`, a second instance with its own messages; no failed node there).
 */
import { runAfter, type Clock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import type { Migration } from '#common/model.ts';
import type { AckStatus } from '../channel/route-service.ts';

export interface RouteHoldDeps {
  clock: Clock;
  /** The route table's version now: it holds every record committed so far. */
  routeVersion(): number;
  acks(version: number): AckStatus;
  /** Stores that the route is held (at `heldAt`, wall ms; `unacked`: live proxies that had not acknowledged). */
  release(id: string, heldAt: number, unacked: string[]): Promise<void>;
  boundMs: number;
  /**
   * The shorter wait for the failed node's own proxy (the node is silent: cut off, or only its
   * agent paused — then its proxy acknowledges at once). Safe for the same reason as the bound.
   */
  failedNodeBoundMs: number;
  log: Logger;
  /** The log messages: held by every live proxy, and not in time (the failover's by default). */
  messages?: { held: string; late: string };
}

const FAILOVER_MESSAGES = { held: 'failover route held by every live proxy', late: 'proxies did not ack the failover hold in time; promoting anyway' };

interface Waiting {
  /** The failed node (null: none, an update's hold). */
  from: string | null;
  version: number;
  since: number;
  cancel: () => void;
  releasing: boolean;
}

export class FailoverRouteHold {
  private readonly waiting = new Map<string, Waiting>();

  constructor(private readonly deps: RouteHoldDeps) {}

  /** The failover records whose route is not held yet each start waiting (once); others are forgotten. */
  follow(migrations: readonly Migration[]): void {
    // undefined: a record from before the hold existed; a number: held already.
    this.followHolds(migrations.filter((m) => m.failover?.routes_held_at === null).map((m) => ({ id: m.id, from: m.from })));
  }

  /** Each hold in `holds` starts waiting (once) for the route table as it is now; holds not given are forgotten. */
  followHolds(holds: readonly { id: string; from: string | null }[]): void {
    const open = new Set<string>();
    for (const m of holds) {
      open.add(m.id);
      if (this.waiting.has(m.id)) continue;
      const { clock, boundMs } = this.deps;
      const early = m.from === null ? () => {} : runAfter(clock, this.deps.failedNodeBoundMs + 1, () => this.check());
      const late = runAfter(clock, boundMs + 1, () => this.check());
      this.waiting.set(m.id, { from: m.from, version: this.deps.routeVersion(), since: clock.monotonic(), cancel: () => (early(), late()), releasing: false });
    }
    for (const [id, w] of this.waiting) {
      if (open.has(id)) continue;
      w.cancel();
      this.waiting.delete(id);
    }
    if (open.size > 0) this.check();
  }

  /** A proxy acknowledged a table, or time passed: releases each hold that every live proxy applied, or whose bound passed. */
  check(): void {
    const now = this.deps.clock.monotonic();
    for (const [id, w] of this.waiting) {
      if (w.releasing) continue;
      const acks = this.deps.acks(w.version);
      const waitedMs = now - w.since;
      const onlyFailedNode = w.from !== null && acks.waiting_for.every((n) => n === w.from);
      if (!acks.acked && waitedMs < this.deps.boundMs && !(onlyFailedNode && waitedMs >= this.deps.failedNodeBoundMs)) continue;
      w.releasing = true;
      const unacked = acks.acked ? [] : acks.waiting_for;
      const messages = this.deps.messages ?? FAILOVER_MESSAGES;
      const subject = w.from === null ? { update: id } : { migration: id };
      if (unacked.length > 0) this.deps.log.warn({ corr: id, ...subject, waitingFor: unacked, waitedMs: Math.round(waitedMs) }, messages.late);
      else this.deps.log.info({ corr: id, ...subject, version: w.version, waitedMs: Math.round(waitedMs) }, messages.held);
      this.deps.release(id, this.deps.clock.now(), unacked).catch((err: unknown) => {
        // Tried again at the next ack or tick; the record stays unheld meanwhile.
        w.releasing = false;
        this.deps.log.error({ err, corr: id, ...subject }, 'route hold not written');
      });
    }
  }

  stop(): void {
    for (const w of this.waiting.values()) w.cancel();
    this.waiting.clear();
  }
}

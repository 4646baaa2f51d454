/**
 * The control service's events, for `GET /v1/drover/events` (SSE) and the CLI: changes of
 * the desired configuration, nodes going up or unknown, migration steps, replicas changing
 * state or becoming (or ceasing to be) a problem. Recent events are
 * kept in a ring so a client that reconnects with `Last-Event-ID` misses none of them.
 */
import type { ReplicationEvent } from '#common/api.ts';
import type { HostKeyAcceptance, Migration } from '#common/model.ts';

export type DroverEvent =
  | { type: 'configuration'; data: { version: number; tag: string } }
  | { type: 'node'; data: { uuid: string; host: string | null; state: 'known' | 'unknown' | 'down' } }
  | { type: 'migration'; data: Migration }
  | { type: 'replication'; data: ReplicationEvent }
  /**
   * A report the control service did not take as it was (docs/DESIGN.md §23): a changed host
   * key (`problem`); or the operator accepting a new one, which ends that problem (`accepted`).
   */
  | { type: 'security'; data: { uuid: string; host: string; problem: string } | { uuid: string; host: string; accepted: HostKeyAcceptance; resolved: string } };

export interface Recorded {
  id: number;
  at: number;
  event: DroverEvent;
}

export class EventBus {
  private readonly ring: Recorded[] = [];
  private readonly listeners = new Set<(recorded: Recorded) => void>();
  private nextId: number;

  constructor(
    private readonly clock: () => number,
    private readonly keep = 1000,
  ) {
    // Ids keep growing across restarts (they start at the clock), so a stale Last-Event-ID
    // from an earlier process replays nothing wrong.
    this.nextId = clock();
  }

  emit(event: DroverEvent): void {
    const recorded = { id: this.nextId++, at: this.clock(), event };
    this.ring.push(recorded);
    if (this.ring.length > this.keep) this.ring.shift();
    for (const listener of this.listeners) listener(recorded);
  }

  /** Events after `lastId` still in the ring. */
  since(lastId: number): Recorded[] {
    return this.ring.filter((r) => r.id > lastId);
  }

  subscribe(listener: (recorded: Recorded) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

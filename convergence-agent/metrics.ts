/**
 * What the agent measures (docs/DESIGN.md §25), as the instrumented code sees it: a small
 * interface, so nothing but `prom-metrics.ts` touches prom-client and tests can pass their
 * own. Replication lag is read at scrape time from the replication scheduler's statuses
 * (the same ones the agent reports), not pushed.
 */
import type { Dataset, ReplicaStatus } from '#common/model.ts';

export interface AgentMetrics {
  /** One pass of the loop (discover → plan → report → execute), in seconds. */
  pass(seconds: number): void;
  /** A change of the plan ran: `kind` is the change's verb-noun (`start-container`). */
  change(kind: string, outcome: 'applied' | 'failed'): void;
  /** The source's time in one phase of a move (`pre-copy`, `cutover`), in seconds. */
  migrationPhase(phase: 'pre-copy' | 'cutover', seconds: number): void;
  /** A move's stopped interval on the source: the application stopped → handoff posted, in seconds. */
  cutoverPause(seconds: number): void;
  /** Bytes of a replication step that reached a peer, by transport (`ssh`, `tls`). */
  sent(transport: string, bytes: number): void;
  /** One health probe of an application's container: `success`, `failure` or `unknown`. */
  probe(application: string, outcome: string): void;
}

export const NO_AGENT_METRICS: AgentMetrics = {
  pass: () => undefined,
  change: () => undefined,
  migrationPhase: () => undefined,
  cutoverPause: () => undefined,
  sent: () => undefined,
  probe: () => undefined,
};

/** What the replication gauges read at each scrape. */
export interface ReplicationView {
  /** This node's pairs (dataset, replica), as it reports them. */
  statuses(): readonly ReplicaStatus[];
  /** The replication interval, in seconds, of each dataset this node is primary of. */
  intervals(): Iterable<readonly [datasetId: string, seconds: number]>;
}

/** The intervals of the datasets `node` is primary of in its newest view (none before the first). */
export function primaryIntervals(desired: { datasets: readonly Dataset[] } | null, node: string): Array<readonly [string, number]> {
  return (desired?.datasets ?? []).flatMap((d) => (d.primary === node && d.replication ? [[d.dataset_id, d.replication.interval_seconds] as const] : []));
}

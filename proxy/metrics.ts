/**
 * What the proxy measures (docs/DESIGN.md §25), as its core sees it: a small interface, so
 * nothing but `prom-metrics.ts` touches prom-client and tests can pass their own. Bytes and
 * open connections are read from the TCP engine's counts at scrape time.
 */

/**
 * What happened to a client connection on a port: `accepted` (every one), then `forwarded`
 * (sent to the backend at once, or when its hold ended), `held` (waited for a hold to end),
 * or `refused` (closed by the proxy without reaching a backend: the hold queue full, the hold
 * deadline passed, the backend unreachable until the deadline, or an instance gone before
 * answering a request that may not be sent twice); `replayed` (an instance went before
 * answering and what the client sent went to another, docs/DESIGN.md §30).
 */
export type ConnectionEvent = 'accepted' | 'forwarded' | 'held' | 'refused' | 'replayed';

export interface ProxyMetrics {
  /** `n` events at once (default 1): the native relay reports its counts in batches. */
  connection(application: string, event: ConnectionEvent, n?: number): void;
  /** A held connection's wait ended (released to the backend, or closed at the deadline), in seconds. */
  heldFor(application: string, seconds: number): void;
  /** A route table was applied in full (listeners, holds, kernel rules): its version and how long it took. */
  routeTable(version: number, seconds: number): void;
}

export const NO_PROXY_METRICS: ProxyMetrics = {
  connection: () => undefined,
  heldFor: () => undefined,
  routeTable: () => undefined,
};

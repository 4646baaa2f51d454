/**
 * The proxy's one prom-client adapter (docs/DESIGN.md §25): a registry of its own, the
 * default process metrics, and the proxy's metrics, served by `#common/metrics-listener.ts`.
 * With `workers: N` they are the primary process's: workers accept on the same ports and
 * are not counted here (XXX: a worker's counts would have to travel over its IPC channel).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MetricsSource } from '#common/metrics-listener.ts';
import type { ConnectionEvent, ProxyMetrics } from './metrics.ts';
import type { TcpCounts } from './tcp.ts';

/** A hold lasts a cutover (~0.1–5 s) and is cut at the deadline (30 s). */
const HELD_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60];
const APPLY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

export class PromProxyMetrics implements ProxyMetrics, MetricsSource {
  readonly registry = new Registry();
  private readonly connections: Counter<'application' | 'event'>;
  private readonly held: Histogram<'application'>;
  private readonly version: Gauge;
  private readonly apply: Histogram;
  private counts: () => TcpCounts | null = () => null;
  /**
   * Connection events since the last scrape, per application: counted here with a map lookup
   * and an increment, folded into the counter when it is read. prom-client's `inc` with
   * labels hashes its label object on every call, and a new connection per request made
   * that a visible part of the accept path (bench/RESULTS.md, 2026-12-07).
   */
  private pending = new Map<string, Record<ConnectionEvent, number>>();

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const self = this;
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.connections = new Counter({
      name: 'drover_proxy_connections_total',
      help: 'Client connections by application and what happened: accepted, forwarded, held, refused (closed without reaching a backend)',
      labelNames: ['application', 'event'],
      registers,
      collect() {
        self.flushConnections(this);
      },
    });
    this.held = new Histogram({ name: 'drover_proxy_held_duration_seconds', help: 'How long held connections waited for their hold to end (released or closed at the deadline)', labelNames: ['application'], buckets: HELD_BUCKETS, registers });
    this.version = new Gauge({ name: 'drover_proxy_route_table_version', help: 'Version of the route table applied in full (0 before the first)', registers });
    this.apply = new Histogram({ name: 'drover_proxy_route_table_apply_duration_seconds', help: 'Time to apply a route table: holds, targets, listeners and kernel rules', buckets: APPLY_BUCKETS, registers });
    new Counter({
      name: 'drover_proxy_relayed_bytes_total',
      help: 'Bytes relayed between clients and backends, both directions',
      registers,
      collect() {
        const c = self.counts();
        if (c === null) return;
        this.reset();
        this.inc(c.relayedBytes);
      },
    });
    new Gauge({
      name: 'drover_proxy_connections_open',
      help: 'Client connections accepted and not yet closed (held, connecting or relaying)',
      registers,
      collect() {
        this.set(self.counts()?.inbound ?? 0);
      },
    });
  }

  /** Where the byte and open-connection figures are read from (the TCP engine). */
  readFrom(counts: () => TcpCounts): void {
    this.counts = counts;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  connection(application: string, event: ConnectionEvent, n = 1): void {
    let counts = this.pending.get(application);
    if (counts === undefined) this.pending.set(application, (counts = { accepted: 0, forwarded: 0, held: 0, refused: 0, replayed: 0 }));
    counts[event] += n;
  }

  private flushConnections(counter: Counter<'application' | 'event'>): void {
    const pending = this.pending;
    this.pending = new Map();
    for (const [application, counts] of pending) {
      for (const event of Object.keys(counts) as ConnectionEvent[]) if (counts[event] > 0) counter.inc({ application, event }, counts[event]);
    }
  }

  heldFor(application: string, seconds: number): void {
    this.held.observe({ application }, seconds);
  }

  routeTable(version: number, seconds: number): void {
    this.version.set(version);
    this.apply.observe(seconds);
  }
}

/**
 * The control service's one prom-client adapter (docs/DESIGN.md §25): a registry of its own
 * (never prom-client's global one, so tests build as many as they like), the default process
 * metrics, and drover's metrics, served by `#common/metrics-listener.ts`.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { MIGRATION_PHASES } from '#common/migration-protocol.ts';
import type { MetricsSource } from '#common/metrics-listener.ts';
import type { ControlGauges, ControlMetrics } from './metrics.ts';

/** Seconds: an API answer is ~1 ms; a long-poll waits up to 25 s. */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30];

export class PromControlMetrics implements ControlMetrics, MetricsSource {
  readonly registry = new Registry();
  private readonly requests: Histogram<'route' | 'method' | 'code'>;
  private readonly phases: Counter<'phase'>;
  private readonly failovers: Counter;
  private gauges: ControlGauges | null = null;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const self = this;
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.requests = new Histogram({
      name: 'drover_control_api_request_duration_seconds',
      help: 'API requests answered, by route template, method and status code (long-polls included: they wait up to 25 s)',
      labelNames: ['route', 'method', 'code'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.phases = new Counter({ name: 'drover_control_migration_phases_total', help: 'Migrations that entered each phase (failovers apart)', labelNames: ['phase'], registers });
    this.failovers = new Counter({ name: 'drover_control_failovers_total', help: 'Applications (or datasets alone) failed over from a down node', registers });
    for (const phase of ['done', 'failed'] as const) this.phases.inc({ phase }, 0);
    new Gauge({
      name: 'drover_control_agents',
      help: 'Registered nodes by the state of their lease: known, unknown (lease lapsed), down',
      labelNames: ['state'],
      registers,
      collect() {
        if (self.gauges) for (const [state, n] of Object.entries(self.gauges.agents())) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'drover_control_migrations',
      help: 'Migration records kept in the desired configuration, by phase',
      labelNames: ['phase'],
      registers,
      collect() {
        if (!self.gauges) return;
        const counts = self.gauges.migrations();
        for (const phase of MIGRATION_PHASES) this.set({ phase }, counts[phase] ?? 0);
      },
    });
  }

  /** Where the gauges read from at each scrape (the Control, once built); until then they are absent. */
  readFrom(gauges: ControlGauges): void {
    this.gauges = gauges;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  request(route: string, method: string, code: number, seconds: number): void {
    this.requests.observe({ route, method, code: String(code) }, seconds);
  }

  migrationPhase(phase: string): void {
    this.phases.inc({ phase });
  }

  failover(): void {
    this.failovers.inc();
  }
}

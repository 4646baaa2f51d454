/**
 * The agent's one prom-client adapter (docs/DESIGN.md §25): a registry of its own, the
 * default process metrics, and the agent's metrics, served by `#common/metrics-listener.ts`.
 * Labels stay bounded: change kinds, phases, transports, applications, datasets and replicas.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MetricsSource } from '#common/metrics-listener.ts';
import type { AgentMetrics, ReplicationView } from './metrics.ts';

/** A move's pause is ~0.1–5 s; a pre-copy seconds to minutes. */
const PAUSE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60];
const PHASE_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800];
const PASS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class PromAgentMetrics implements AgentMetrics, MetricsSource {
  readonly registry = new Registry();
  private readonly passes: Histogram;
  private readonly changes: Counter<'kind' | 'outcome'>;
  private readonly phases: Histogram<'phase'>;
  private readonly pauses: Histogram;
  private readonly bytes: Counter<'transport'>;
  private readonly probes: Counter<'application' | 'outcome'>;
  private view: ReplicationView = { statuses: () => [], intervals: () => [] };

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.passes = new Histogram({ name: 'drover_agent_pass_duration_seconds', help: 'Passes of the convergence loop: discover, plan, report, execute', buckets: PASS_BUCKETS, registers });
    this.changes = new Counter({ name: 'drover_agent_changes_total', help: 'Changes of the plan run, by kind and outcome (applied, failed)', labelNames: ['kind', 'outcome'], registers });
    this.phases = new Histogram({ name: 'drover_agent_migration_phase_duration_seconds', help: "The source's time in each phase of a move (pre-copy, cutover)", labelNames: ['phase'], buckets: PHASE_BUCKETS, registers });
    this.pauses = new Histogram({ name: 'drover_agent_cutover_pause_seconds', help: "A move's stopped interval on the source: the application stopped (proxies holding) to handoff posted", buckets: PAUSE_BUCKETS, registers });
    this.bytes = new Counter({ name: 'drover_agent_sent_bytes_total', help: 'Bytes of replication steps (moves and continuous replication) sent to peers, by transport', labelNames: ['transport'], registers });
    this.probes = new Counter({ name: 'drover_agent_health_probes_total', help: "Health probes of applications' containers, by outcome (success, failure, unknown)", labelNames: ['application', 'outcome'], registers });
    const self = this;
    new Gauge({
      name: 'drover_replication_lag_seconds',
      help: "Age of the newest snapshot a replica shares with this primary (the primary's clock); absent while seeding",
      labelNames: ['dataset', 'replica'],
      registers,
      collect() {
        this.reset();
        for (const s of self.view.statuses()) if (s.lag_seconds !== null) this.set({ dataset: s.dataset_id, replica: s.replica }, s.lag_seconds);
      },
    });
    new Gauge({
      name: 'drover_replication_last_success_timestamp_seconds',
      help: 'When a replication step to the replica last succeeded (Unix time)',
      labelNames: ['dataset', 'replica'],
      registers,
      collect() {
        this.reset();
        for (const s of self.view.statuses()) if (s.last_success_at !== null) this.set({ dataset: s.dataset_id, replica: s.replica }, s.last_success_at / 1000);
      },
    });
    new Gauge({
      name: 'drover_replication_replicas',
      help: "This primary's replication pairs by state (seeding, ok, diverged, error, paused)",
      labelNames: ['state'],
      registers,
      collect() {
        const counts: Record<string, number> = { seeding: 0, ok: 0, diverged: 0, error: 0, paused: 0 };
        for (const s of self.view.statuses()) counts[s.state] = (counts[s.state] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'drover_replication_interval_seconds',
      help: 'The replication interval of each dataset this node is primary of (alerts compare the lag with it)',
      labelNames: ['dataset'],
      registers,
      collect() {
        this.reset();
        for (const [dataset, seconds] of self.view.intervals()) this.set({ dataset }, seconds);
      },
    });
  }

  /** Where the replication gauges read from (the replication scheduler and the loop, once built). */
  readFrom(view: ReplicationView): void {
    this.view = view;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  pass(seconds: number): void {
    this.passes.observe(seconds);
  }

  change(kind: string, outcome: 'applied' | 'failed'): void {
    this.changes.inc({ kind, outcome });
  }

  migrationPhase(phase: 'pre-copy' | 'cutover', seconds: number): void {
    this.phases.observe({ phase }, seconds);
  }

  cutoverPause(seconds: number): void {
    this.pauses.observe(seconds);
  }

  sent(transport: string, bytes: number): void {
    this.bytes.inc({ transport }, bytes);
  }

  probe(application: string, outcome: string): void {
    this.probes.inc({ application, outcome });
  }
}

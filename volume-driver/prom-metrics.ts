/**
 * The volume plugin's one prom-client adapter (docs/DESIGN.md §25): a registry of its own,
 * the default process metrics, the calls Docker made and the mount latency, served by
 * `#common/metrics-listener.ts`.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { MetricsSource } from '#common/metrics-listener.ts';
import type { PluginMetrics } from './metrics.ts';

/** A local mount is milliseconds; one that moves the dataset here waits up to 90 s. */
const MOUNT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 90, 120];

export class PromPluginMetrics implements PluginMetrics, MetricsSource {
  readonly registry = new Registry();
  private readonly calls: Counter<'endpoint' | 'outcome'>;
  private readonly mounts: Histogram<'outcome'>;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.calls = new Counter({ name: 'drover_plugin_calls_total', help: "Docker's calls to the volume plugin, by endpoint and outcome (ok, error: an Err answered)", labelNames: ['endpoint', 'outcome'], registers });
    this.mounts = new Histogram({ name: 'drover_plugin_mount_duration_seconds', help: 'VolumeDriver.Mount answered, by outcome: a local mount, or one that waited for the dataset to move here', labelNames: ['outcome'], buckets: MOUNT_BUCKETS, registers });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  call(endpoint: string, outcome: 'ok' | 'error', seconds: number): void {
    this.calls.inc({ endpoint, outcome });
    if (endpoint === 'VolumeDriver.Mount') this.mounts.observe({ outcome }, seconds);
  }
}

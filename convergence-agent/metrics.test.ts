import { afterEach, describe, expect, it } from 'vitest';
import { DroverError } from '#common/errors.ts';
import { silentLogger } from '#common/log.ts';
import { startMetricsListener, type MetricsListener } from '#common/metrics-listener.ts';
import type { ReplicaStatus } from '#common/model.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { sampleValue, scrape } from '#common/testing/prom-text.ts';
import { Executor } from './execute.ts';
import { containerSpec } from './plan/container-spec.ts';
import { PromAgentMetrics } from './prom-metrics.ts';
import { RestartLedger } from './restart-ledger.ts';
import { FakeContainerRuntime } from './testing/fake-container-runtime.ts';
import { FakeDatasetStore } from './testing/fake-dataset-store.ts';
import { ADDRESS_A, DS_1, DS_2, NODE_B, app } from './testing/fixtures.ts';

let listener: MetricsListener | undefined;
afterEach(async () => {
  await listener?.close();
  listener = undefined;
});

async function served(metrics: PromAgentMetrics): Promise<() => Promise<string>> {
  listener = await startMetricsListener('127.0.0.1:0', metrics, silentLogger());
  return async () => (await scrape(listener!.address)).text;
}

const status = (datasetId: string, extra: Partial<ReplicaStatus>): ReplicaStatus => ({
  dataset_id: datasetId,
  replica: NODE_B,
  state: 'ok',
  newest_snapshot: 'drover-1',
  newest_snapshot_created_at: 1_800_000_000_000,
  lag_seconds: 2.5,
  bytes_sent_total: 0,
  last_success_at: 1_800_000_001_000,
  last_error: null,
  ...extra,
});

describe('the agent /metrics', () => {
  it('counts changes applied and failed by kind', async () => {
    const metrics = new PromAgentMetrics();
    const text = await served(metrics);
    const clock = new FakeClock();
    const runtime = new FakeContainerRuntime(() => clock.now());
    const executor = new Executor({ store: new FakeDatasetStore({ pool: 'fakepool' }), runtime, ledger: new RestartLedger(), clock, log: silentLogger(), metrics });
    runtime.failNext('createAndStart', new DroverError('DROVER_DOCKER_FAILED', 'image is broken'), 'drover-bad');
    const spec = (name: string) => containerSpec(app(name), { nodeUuid: NODE_B, address: ADDRESS_A, generation: 0, mountpoints: new Map() });
    await executor.execute([
      { kind: 'create-dataset', datasetId: DS_1, maximumSize: null },
      { kind: 'create-dataset', datasetId: DS_2, maximumSize: null },
      { kind: 'start-container', spec: spec('bad') },
    ]);
    const body = await text();
    expect(sampleValue(body, 'drover_agent_changes_total', { kind: 'create-dataset', outcome: 'applied' })).toBe(2);
    expect(sampleValue(body, 'drover_agent_changes_total', { kind: 'start-container', outcome: 'failed' })).toBe(1);
    expect(body).toContain('process_resident_memory_bytes');
  });

  it('shows each replica\'s lag and last success per dataset, read from the replication pairs at scrape time', async () => {
    const metrics = new PromAgentMetrics({ defaultMetrics: false });
    const text = await served(metrics);
    let statuses = [status(DS_1, {}), status(DS_2, { state: 'seeding', lag_seconds: null, last_success_at: null })];
    metrics.readFrom({ statuses: () => statuses, intervals: () => [[DS_1, 2]] });
    let body = await text();
    expect(sampleValue(body, 'drover_replication_lag_seconds', { dataset: DS_1, replica: NODE_B })).toBe(2.5);
    expect(sampleValue(body, 'drover_replication_lag_seconds', { dataset: DS_2 })).toBeUndefined();
    expect(sampleValue(body, 'drover_replication_last_success_timestamp_seconds', { dataset: DS_1, replica: NODE_B })).toBe(1_800_000_001);
    expect(sampleValue(body, 'drover_replication_replicas', { state: 'seeding' })).toBe(1);
    expect(sampleValue(body, 'drover_replication_interval_seconds', { dataset: DS_1 })).toBe(2);
    statuses = [status(DS_1, { lag_seconds: 7 })];
    body = await text();
    expect(sampleValue(body, 'drover_replication_lag_seconds', { dataset: DS_1, replica: NODE_B })).toBe(7);
    expect(sampleValue(body, 'drover_replication_replicas', { state: 'seeding' })).toBe(0);
  });

  it('counts bytes sent by transport, passes and health probes by application and outcome', async () => {
    const metrics = new PromAgentMetrics({ defaultMetrics: false });
    const text = await served(metrics);
    metrics.sent('ssh', 1000);
    metrics.sent('ssh', 24);
    metrics.pass(0.02);
    metrics.probe('redis', 'success');
    metrics.probe('redis', 'failure');
    metrics.probe('redis', 'success');
    const body = await text();
    expect(sampleValue(body, 'drover_agent_sent_bytes_total', { transport: 'ssh' })).toBe(1024);
    expect(sampleValue(body, 'drover_agent_pass_duration_seconds_count')).toBe(1);
    expect(sampleValue(body, 'drover_agent_health_probes_total', { application: 'redis', outcome: 'success' })).toBe(2);
  });
});

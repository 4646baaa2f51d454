import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CORR_HEADER } from '#common/log.ts';
import { startMetricsListener, type MetricsListener } from '#common/metrics-listener.ts';
import { sampleValue, scrape } from '#common/testing/prom-text.ts';
import { controlGauges } from './metrics.ts';
import { PromControlMetrics } from './prom-metrics.ts';
import { harness, nodeId, report, type Harness } from './testing/harness.ts';

let h: Harness | undefined;
let listener: MetricsListener | undefined;
afterEach(async () => {
  await listener?.close();
  await h?.close();
  listener = undefined;
  h = undefined;
});

/** A control service with real prom-client metrics served on a /metrics listener of its own. */
async function measured(log = pino({ level: 'silent' })) {
  const metrics = new PromControlMetrics({ defaultMetrics: true });
  h = await harness({ metrics, log, nodeTimeoutMs: 10_000, nodeDownGraceMs: 30_000 });
  metrics.readFrom(controlGauges(h.control));
  listener = await startMetricsListener('127.0.0.1:0', metrics, log);
  return { h, metrics_text: async () => (await scrape(listener!.address)).text };
}

function captured(): { log: pino.Logger; records: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(...chunk.toString().split('\n').filter(Boolean)), done()) });
  return { log: pino({ level: 'debug' }, sink), records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('the control service /metrics', () => {
  it('serves Prometheus text with the default process metrics on its own listener', async () => {
    await measured();
    const answer = await scrape(listener!.address);
    expect(answer.status).toBe(200);
    expect(answer.contentType).toContain('text/plain');
    expect(answer.text).toContain('process_cpu_seconds_total');
    expect(answer.text).toContain('nodejs_eventloop_lag_seconds');
  });

  it('times API requests by route template, method and status code', async () => {
    const { h, metrics_text } = await measured();
    await h.request('GET', '/v1/version');
    await h.request('GET', '/v1/version');
    await h.request('GET', '/v1/drover/migrations/00000000-0000-4000-8000-000000000000');
    const text = await metrics_text();
    expect(sampleValue(text, 'drover_control_api_request_duration_seconds_count', { route: '/v1/version', method: 'GET', code: '200' })).toBe(2);
    expect(sampleValue(text, 'drover_control_api_request_duration_seconds_count', { route: '/v1/drover/migrations/:id', code: '404' })).toBe(1);
  });

  it('counts agents by lease state: known, unknown, down', async () => {
    const { h, metrics_text } = await measured();
    await h.request('POST', '/v1/drover/agents/report', report(1));
    await h.request('POST', '/v1/drover/agents/report', report(2));
    await h.request('POST', '/v1/drover/agents/report', report(3));
    h.clock.advance(11_000);
    await h.request('POST', '/v1/drover/agents/report', report(1));
    await h.request('POST', '/v1/drover/agents/report', report(3));
    h.clock.advance(11_000);
    await h.request('POST', '/v1/drover/agents/report', report(1));
    h.clock.advance(25_000);
    await h.request('POST', '/v1/drover/agents/report', report(1));
    const text = await metrics_text();
    expect(sampleValue(text, 'drover_control_agents', { state: 'known' })).toBe(1);
    expect(sampleValue(text, 'drover_control_agents', { state: 'unknown' })).toBe(1);
    expect(sampleValue(text, 'drover_control_agents', { state: 'down' })).toBe(1);
  });

  it('counts migrations by phase and each phase a migration entered', async () => {
    const { h, metrics_text } = await measured();
    for (const i of [1, 2]) await h.request('POST', '/v1/drover/agents/report', report(i));
    await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'registry.example/nginx', node_uuid: nodeId(1) });
    const m = (await h.request('POST', '/v1/drover/applications/web/move', { node_uuid: nodeId(2) })).json().migration;
    await h.request('POST', `/v1/drover/migrations/${m.id}/update`, { node_uuid: nodeId(1), generation: m.generation, phase: 'pre-copy' });
    let text = await metrics_text();
    expect(sampleValue(text, 'drover_control_migrations', { phase: 'pre-copy' })).toBe(1);
    expect(sampleValue(text, 'drover_control_migrations', { phase: 'pending' })).toBe(0);
    expect(sampleValue(text, 'drover_control_migration_phases_total', { phase: 'pending' })).toBe(1);
    expect(sampleValue(text, 'drover_control_migration_phases_total', { phase: 'pre-copy' })).toBe(1);
    expect(sampleValue(text, 'drover_control_migration_phases_total', { phase: 'failed' })).toBe(0);
    await h.request('POST', `/v1/drover/migrations/${m.id}/update`, { node_uuid: nodeId(1), generation: m.generation, phase: 'failed', error: 'test' });
    text = await metrics_text();
    expect(sampleValue(text, 'drover_control_migration_phases_total', { phase: 'failed' })).toBe(1);
    expect(sampleValue(text, 'drover_control_failovers_total')).toBe(0);
  });
});

describe('the control service correlated logs', () => {
  it('logs a write at info under a fresh corr, answered in x-drover-corr, and a read at debug', async () => {
    const { log, records } = captured();
    const { h } = await measured(log);
    const answer = await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'registry.example/nginx' });
    const corr = answer.headers[CORR_HEADER];
    expect(corr).toMatch(/^[0-9a-f]{12}$/);
    const line = records().find((r) => r.msg === 'request answered' && r.corr === corr);
    expect(line).toMatchObject({ level: 30, method: 'POST', route: '/v1/configuration/containers', code: 201 });
    await h.request('GET', '/v1/version');
    expect(records().filter((r) => r.msg === 'request answered' && r.route === '/v1/version').map((r) => r.level)).toEqual([20]);
  });

  it('logs a migration step under the migration id its agent sent, beside the migration\'s own records', async () => {
    const { log, records } = captured();
    const { h } = await measured(log);
    for (const i of [1, 2]) await h.request('POST', '/v1/drover/agents/report', report(i));
    await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'registry.example/nginx', node_uuid: nodeId(1) });
    const m = (await h.request('POST', '/v1/drover/applications/web/move', { node_uuid: nodeId(2) })).json().migration;
    const step = await h.request('POST', `/v1/drover/migrations/${m.id}/update`, { node_uuid: nodeId(1), generation: m.generation, phase: 'pre-copy' }, { [CORR_HEADER]: m.id });
    expect(step.headers[CORR_HEADER]).toBe(m.id);
    const mine = records().filter((r) => r.corr === m.id).map((r) => `${r.msg as string}${r.phase ? ` ${r.phase as string}` : ''}`);
    expect(mine).toEqual(['migration entered a phase pending', 'migration entered a phase pre-copy', 'request answered']);
  });
});

/**
 * The proxy's metrics and correlated records, read as a scraper and a `grep` would: through
 * its real /metrics text and its pino records, around a real hold on loopback sockets.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startMetricsListener, type MetricsListener } from '#common/metrics-listener.ts';
import { sampleValue, scrape } from '#common/testing/prom-text.ts';
import { createEngine } from './engine.ts';
import { PromProxyMetrics } from './prom-metrics.ts';
import { DEFAULT_FORWARDING, RoutingProxy } from './proxy.ts';
import { route } from './testing/route-server.ts';
import { readAll, startServer, waitFor, type TestServer } from './testing/sockets.ts';

const PROXY_HOST = '127.0.6.5';
const BACKEND_HOST = '127.0.6.6';
const MIGRATION = '0000000f-0000-4000-8000-000000000001';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.each(['uv', 'net', 'native'] as const)('the proxy /metrics on the %s engine', (engineChoice) => {
  it('counts a held connection, how long it waited, the bytes relayed and the route table applied, and logs the hold under the migration id', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(...chunk.toString().split('\n').filter(Boolean)), done()) }));
    const backend: TestServer = await startServer(BACKEND_HOST, (s) => s.on('data', (d: Buffer) => s.end(d)));
    cleanups.push(() => backend.close());
    const engine = createEngine(engineChoice);
    const metrics = new PromProxyMetrics();
    metrics.readFrom(() => engine.counts());
    const proxy = new RoutingProxy({ engine, listenHost: PROXY_HOST, options: DEFAULT_FORWARDING, log, metrics });
    cleanups.push(() => proxy.stop(100));
    const listener: MetricsListener = await startMetricsListener('127.0.0.1:0', metrics, log);
    cleanups.push(() => listener.close());
    const port = { uv: 21101, net: 21102, native: 21103 }[engineChoice];
    const target = { host: BACKEND_HOST, port: backend.port };

    await proxy.apply({ version: 1, routes: [route('web', port, target)] });
    await proxy.apply({ version: 2, routes: [{ ...route('web', port, target, true, 3), migration: MIGRATION }] });
    const client = connect({ host: PROXY_HOST, port });
    const reply = readAll(client);
    client.write('hello');
    await waitFor(() => proxy.status().ports[0]!.held === 1, 5000, 'the connection held');
    await new Promise((r) => setTimeout(r, 50));
    await proxy.apply({ version: 3, routes: [{ ...route('web', port, target, false, 3), migration: MIGRATION }] });
    expect((await reply).toString()).toBe('hello');

    const text = (await scrape(listener.address)).text;
    expect(sampleValue(text, 'drover_proxy_connections_total', { application: 'web', event: 'accepted' })).toBe(1);
    expect(sampleValue(text, 'drover_proxy_connections_total', { application: 'web', event: 'held' })).toBe(1);
    expect(sampleValue(text, 'drover_proxy_connections_total', { application: 'web', event: 'forwarded' })).toBe(1);
    expect(sampleValue(text, 'drover_proxy_held_duration_seconds_count', { application: 'web' })).toBe(1);
    expect(sampleValue(text, 'drover_proxy_held_duration_seconds_sum', { application: 'web' })).toBeGreaterThanOrEqual(0.04);
    expect(sampleValue(text, 'drover_proxy_relayed_bytes_total')).toBe(10);
    expect(sampleValue(text, 'drover_proxy_route_table_version')).toBe(3);
    expect(sampleValue(text, 'drover_proxy_route_table_apply_duration_seconds_count')).toBe(3);
    expect(text).toContain('process_cpu_seconds_total');

    const records = lines.map((l) => JSON.parse(l) as { msg: string; corr?: string });
    expect(records.filter((r) => r.corr === MIGRATION).map((r) => r.msg)).toEqual(['route hold started', 'route hold ended', 'held connections released']);
  });
});

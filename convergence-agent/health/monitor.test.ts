import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { HealthCheck } from '#common/model.ts';
import { FakeClock, settle } from '#common/testing/fake-clock.ts';
import { HealthMonitor, type ProbeTarget } from './monitor.ts';
import { START_INTERVAL_MS } from './probe-state.ts';

// Probe timing runs on a fake clock; the probes themselves hit a real TCP server.
let server: Server | null = null;
const sockets: Socket[] = [];
let monitor: HealthMonitor | null = null;
afterEach(async () => {
  await monitor?.stop();
  for (const s of sockets.splice(0)) s.destroy();
  if (server?.listening) await new Promise((r) => server!.close(r));
});

async function tcpServer(): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  server = createServer((s) => {
    accepted++;
    sockets.push(s);
    s.destroy();
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, accepted: () => accepted };
}

/** Waits (real time, bounded) until `predicate` holds. */
async function eventually(predicate: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('health monitor', () => {
  const check = HealthCheck.parse({ type: 'tcp', port: 80, initial_delay_seconds: 5, period_seconds: 1, timeout_seconds: 0.5, failure_threshold: 2 });

  it('waits the initial delay, then probes every period, and turns unhealthy after failure_threshold failures', async () => {
    const clock = new FakeClock();
    const { port, accepted } = await tcpServer();
    const changes: string[] = [];
    monitor = new HealthMonitor({ clock, runtime: { exec: async () => ({ exitCode: 0 }) }, log: silentLogger(), onChange: (_, s) => changes.push(s.status) });
    const target: ProbeTarget = { containerId: 'c1', startedAt: clock.now(), check, endpoint: { host: '127.0.0.1', port } };
    monitor.sync([target]);
    expect(monitor.health('c1')).toBe('starting');

    await clock.advance(4_999);
    await new Promise((r) => setTimeout(r, 50));
    expect(accepted()).toBe(0);

    await clock.advance(1);
    await eventually(() => monitor!.health('c1') === 'healthy');
    expect(accepted()).toBe(1);

    await new Promise((r) => server!.close(r));
    await eventually(() => clock.pending === 1);
    await clock.advance(1_000);
    await eventually(() => monitor!.state('c1')?.consecutiveFailures === 1);
    expect(monitor.health('c1')).toBe('healthy');
    await eventually(() => clock.pending === 1);
    await clock.advance(1_000);
    await eventually(() => monitor!.health('c1') === 'unhealthy');
    expect(changes).toEqual(['healthy', 'unhealthy']);
  });

  it('probes a starting container every START_INTERVAL_MS between regular probes, and only regular failures count', async () => {
    const clock = new FakeClock();
    let ready = false;
    const execs: number[] = [];
    monitor = new HealthMonitor({ clock, runtime: { exec: async () => (execs.push(clock.now()), { exitCode: ready ? 0 : 1 }) }, log: silentLogger() });
    // Regular probes every 10 s, unhealthy after 2 failures: the slow schedule an operator writes.
    const exec = HealthCheck.parse({ type: 'exec', command: ['redis-cli', 'ping'], period_seconds: 10, failure_threshold: 2 });
    const started = clock.now();
    monitor.sync([{ containerId: 'c1', startedAt: started, check: exec, endpoint: null }]);
    await clock.advance(0);
    await eventually(() => execs.length === 1 && clock.pending === 1);
    expect(monitor.state('c1')?.consecutiveFailures).toBe(1);
    // Five extra probes fail in the next 500 ms; none of them counts toward the threshold.
    for (let i = 0; i < 5; i++) {
      await clock.advance(START_INTERVAL_MS);
      await eventually(() => execs.length === i + 2 && clock.pending === 1);
    }
    expect(monitor.health('c1')).toBe('starting');
    expect(monitor.state('c1')?.consecutiveFailures).toBe(1);
    ready = true;
    await clock.advance(START_INTERVAL_MS);
    await eventually(() => monitor!.health('c1') === 'healthy');
    expect(clock.now() - started).toBe(6 * START_INTERVAL_MS);
    // Healthy: back to the regular period.
    await eventually(() => clock.pending === 1);
    await clock.advance(START_INTERVAL_MS);
    await settle();
    expect(execs).toHaveLength(7);
  });

  it("passes a tcp check's send and expect to the probe", async () => {
    let received = '';
    server = createServer((s) => {
      sockets.push(s);
      s.on('data', (d) => {
        received += d.toString();
        s.write('+PONG\r\n');
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const endpoint = { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
    const clock = new FakeClock();
    monitor = new HealthMonitor({ clock, runtime: { exec: async () => ({ exitCode: 0 }) }, log: silentLogger() });
    const redis = HealthCheck.parse({ type: 'tcp', port: 6379, send: 'PING\r\n', expect: '+PONG', timeout_seconds: 0.2, failure_threshold: 1 });
    const wrong = HealthCheck.parse({ type: 'tcp', port: 6379, send: 'PING\r\n', expect: '+NOPE', timeout_seconds: 0.2, failure_threshold: 1 });
    monitor.sync([
      { containerId: 'c1', startedAt: clock.now(), check: redis, endpoint },
      { containerId: 'c2', startedAt: clock.now(), check: wrong, endpoint },
    ]);
    await clock.advance(0);
    await eventually(() => monitor!.health('c1') === 'healthy' && monitor!.health('c2') === 'unhealthy');
    expect(monitor.state('c2')?.lastDetail).toBe('first line of the answer has no "+NOPE"; answered "+PONG"');
    expect(received).toBe('PING\r\nPING\r\n');
  });

  it('starts over from starting when the container restarts, and forgets containers that are gone', async () => {
    const clock = new FakeClock();
    monitor = new HealthMonitor({ clock, runtime: { exec: async () => ({ exitCode: 1 }) }, log: silentLogger() });
    const exec = HealthCheck.parse({ type: 'exec', command: ['false'], period_seconds: 1, failure_threshold: 1 });
    monitor.sync([{ containerId: 'c1', startedAt: clock.now(), check: exec, endpoint: null }]);
    await clock.advance(0);
    await eventually(() => monitor!.health('c1') === 'unhealthy');

    monitor.sync([{ containerId: 'c1', startedAt: clock.now() + 1, check: exec, endpoint: null }]);
    expect(monitor.health('c1')).toBe('starting');
    monitor.sync([]);
    await settle();
    expect(monitor.health('c1')).toBe('unknown');
  });
});

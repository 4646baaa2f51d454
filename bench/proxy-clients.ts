/** Client side of bench:proxy: waiting for ports, and the switch under load. */
import { connect } from 'node:net';
import { systemClock } from '#common/clock.ts';
import type { RouteServer } from '../proxy/testing/route-server.ts';
import { route } from '../proxy/testing/route-server.ts';

export async function waitForPort(host: string, port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${host}:${port} did not open within ${timeoutMs} ms`);
    await systemClock.sleep(50);
  }
}

export interface SwitchResult {
  completed: number;
  refused: number;
  reset: number;
  other: number;
  longestMs: number;
  /** Slowest publish → acknowledgement of a route change (long-poll, apply, ack). */
  slowestAckMs: number;
}

/** One HTTP request on a new connection; resolves with the error code, or null when it got a 200. */
function request(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let head = '';
    s.setEncoding('latin1');
    s.on('connect', () => s.write('GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n'));
    s.on('data', (d: string) => {
      if (head.length < 16) head += d;
    });
    s.on('end', () => resolve(head.startsWith('HTTP/1.1 200') ? null : 'EBADREPLY'));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'EUNKNOWN'));
  });
}

/**
 * 50 clients make requests on new connections while the route holds, moves to `b`, holds
 * again and moves back to `a` — each hold acknowledged by the proxy before it ends, as a
 * cutover does. Counts what was refused or reset.
 */
export async function switchUnderLoad(
  routes: RouteServer,
  o: { app?: string; host: string; port: number; nodeUuid: string; a: { host: string; port: number }; b: { host: string; port: number } },
): Promise<SwitchResult> {
  const app = o.app ?? 'bench';
  // The route leads to `a` before the clients start.
  let current = o.a;
  await routes.waitForAck(o.nodeUuid, routes.publish([route(app, o.port, current, false, 1)]), 10_000);
  const result: SwitchResult = { completed: 0, refused: 0, reset: 0, other: 0, longestMs: 0, slowestAckMs: 0 };
  let stop = false;
  const client = async (): Promise<void> => {
    while (!stop) {
      const started = performance.now();
      const err = await request(o.host, o.port);
      result.longestMs = Math.max(result.longestMs, performance.now() - started);
      if (err === null) result.completed++;
      else if (err === 'ECONNREFUSED') result.refused++;
      else if (err === 'ECONNRESET' || err === 'EPIPE') result.reset++;
      else result.other++;
    }
  };
  const pause = (ms: number): Promise<void> => systemClock.sleep(ms);
  const publish = async (target: { host: string; port: number }, hold: boolean): Promise<void> => {
    const started = performance.now();
    const version = routes.publish([route(app, o.port, target, hold, 1)]);
    current = target;
    await routes.waitForAck(o.nodeUuid, version, 10_000);
    result.slowestAckMs = Math.max(result.slowestAckMs, performance.now() - started);
  };
  const clients = Array.from({ length: 50 }, client);
  await pause(300);
  for (const next of [o.b, o.a]) {
    await publish(current, true);
    await pause(300); // the cutover: the source stops, the last delta goes over
    await publish(next, false);
    await pause(300);
  }
  stop = true;
  await Promise.all(clients);
  return result;
}

/**
 * Several instances behind one port (docs/DESIGN.md §30) on real loopback sockets, both
 * engines: connections spread round robin, a dead instance is skipped at its first refused
 * connect with no client failing, and a target leaving the route drains (its open relays go
 * on) instead of being cut.
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Route } from '#common/channel.ts';
import { silentLogger } from '#common/log.ts';
import { Balancer, FAILED_FOR_MS } from './balance.ts';
import { createEngine } from './engine.ts';
import { DEFAULT_FORWARDING, RoutingProxy } from './proxy.ts';
import { connectTo, readAll, startServer, type TestServer } from './testing/sockets.ts';

const NODE = '00000000-0000-4000-8000-000000000001';
const PROXY_HOST = '127.0.8.11';
const BACKEND_HOST = '127.0.8.12';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A backend answering its tag to each connection, then closing. */
async function backend(tag: string): Promise<TestServer> {
  const s = await startServer(BACKEND_HOST, (sock: Socket) => sock.end(tag));
  cleanups.push(() => s.close());
  return s;
}

const target = (port: number) => ({ host: BACKEND_HOST, port, node_uuid: NODE });
const route = (port: number, targets: ReturnType<typeof target>[]): Route => ({ application: 'web', external_port: port, target: targets[0] ?? null, targets, hold: false, generation: 0 });

async function ask(port: number): Promise<string> {
  const s = await connectTo(port, PROXY_HOST);
  s.end();
  return (await readAll(s)).toString();
}

describe('the balancer', () => {
  it('goes round robin, skips a target that failed within FAILED_FOR_MS, and falls back to the oldest failure when all failed', () => {
    const b = new Balancer();
    const ts = [1, 2, 3].map((p) => ({ host: '127.0.0.1', port: p }));
    expect([0, 1, 2, 3].map(() => b.pick(ts, 0)!.port)).toEqual([1, 2, 3, 1]);
    b.failed('127.0.0.1:2', 10);
    expect([0, 1, 2].map(() => b.pick(ts, 20)!.port)).toEqual([3, 1, 3]);
    expect(b.pick(ts, 10 + FAILED_FOR_MS)!.port).toBe(1);
    b.failed('127.0.0.1:1', 30);
    b.failed('127.0.0.1:3', 40);
    b.failed('127.0.0.1:2', 50);
    expect(b.pick(ts, 60)!.port).toBe(1);
  });
});

describe.each(['uv', 'net', 'native'] as const)('several instances through the proxy (%s engine)', (engineName) => {
  function proxy(): RoutingProxy {
    const p = new RoutingProxy({ engine: createEngine(engineName), listenHost: PROXY_HOST, serviceSubnet: null, options: { ...DEFAULT_FORWARDING }, log: silentLogger() });
    cleanups.push(() => p.stop(100));
    return p;
  }

  it('spreads connections evenly over the instances', async () => {
    const bs = await Promise.all(['a', 'b', 'c'].map(backend));
    const p = proxy();
    const port = 18_300 + { uv: 0, net: 1, native: 2 }[engineName];
    await p.apply({ version: 1, routes: [route(port, bs.map((b) => target(b.port)))] });
    const counts = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const tag = await ask(port);
      counts.set(tag, (counts.get(tag) ?? 0) + 1);
    }
    expect(Object.fromEntries(counts)).toEqual({ a: 10, b: 10, c: 10 });
  });

  it('fails no connection when an instance dies before the route knows it', async () => {
    const [a, b] = await Promise.all(['a', 'b'].map(backend));
    const dead = await backend('dead');
    const p = proxy();
    const port = 18_310 + { uv: 0, net: 1, native: 2 }[engineName];
    await p.apply({ version: 1, routes: [route(port, [a!, dead, b!].map((x) => target(x.port)))] });
    await dead.close();
    const tags = [];
    for (let i = 0; i < 12; i++) tags.push(await ask(port));
    expect(tags).not.toContain('dead');
    expect(new Set(tags)).toEqual(new Set(['a', 'b']));
  });

  it('lets a connection to an instance that left the route finish (a drain), not cut it', async () => {
    const slow = await startServer(BACKEND_HOST, (sock: Socket) => setTimeout(() => sock.end('slow'), 300));
    cleanups.push(() => slow.close());
    const other = await backend('other');
    const p = proxy();
    const port = 18_320 + { uv: 0, net: 1, native: 2 }[engineName];
    await p.apply({ version: 1, routes: [route(port, [target(slow.port), target(other.port)])] });
    const s = await connectTo(port, PROXY_HOST);
    s.end();
    const answer = readAll(s);
    await new Promise((r) => setTimeout(r, 50));
    await p.apply({ version: 2, routes: [route(port, [target(other.port)])] });
    expect((await answer).toString()).toBe('slow');
    expect(await ask(port)).toBe('other');
  });
});

/**
 * UDP relays, host-address ports and name routes (docs/DESIGN.md §21) on real loopback
 * sockets: the proxy core applies tables directly; backends are real UDP and TCP servers.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import type { Route } from '#common/channel.ts';
import { silentLogger } from '#common/log.ts';
import { parseServiceSubnet } from '#common/service-subnet.ts';
import { createEngine } from './engine.ts';
import { DEFAULT_FORWARDING, RoutingProxy } from './proxy.ts';
import { connectTo, echo, readAll, startServer, waitFor, type TestServer } from './testing/sockets.ts';

const NODE = '00000000-0000-4000-8000-000000000001';
const PROXY_HOST = '127.0.8.1';
const BACKEND_HOST = '127.0.8.2';
const SUBNET = parseServiceSubnet('127.0.9.0/24')!; // inside 127/8: local without a route

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function proxy(options: Partial<typeof DEFAULT_FORWARDING> = {}): RoutingProxy {
  const p = new RoutingProxy({ engine: createEngine('net'), listenHost: PROXY_HOST, serviceSubnet: SUBNET, options: { ...DEFAULT_FORWARDING, ...options }, log: silentLogger() });
  cleanups.push(() => p.stop(100));
  return p;
}

/** A UDP server on BACKEND_HOST answering `<tag>:<what it got>` to whoever sent it. */
async function udpBackend(tag: string): Promise<{ port: number; peers: Set<string> }> {
  const s = createSocket('udp4');
  const peers = new Set<string>();
  s.on('message', (msg, from) => {
    peers.add(`${from.address}:${from.port}`);
    s.send(`${tag}:${msg.toString()}`, from.port, from.address);
  });
  await new Promise<void>((resolve) => s.bind(0, BACKEND_HOST, resolve));
  cleanups.push(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return { port: s.address().port, peers };
}

async function udpClient(): Promise<{ socket: UdpSocket; ask(port: number, host: string, text: string, timeoutMs?: number): Promise<string | null> }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return {
    socket,
    ask: (port, host, text, timeoutMs = 1_000) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => {
          socket.off('message', on);
          resolve(null);
        }, timeoutMs);
        const on = (msg: Buffer): void => {
          clearTimeout(timer);
          socket.off('message', on);
          resolve(msg.toString());
        };
        socket.on('message', on);
        socket.send(text, port, host);
      }),
  };
}

/** A port number free for UDP and TCP on the test addresses (bound once, then released). */
async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, PROXY_HOST, resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const target = (port: number, host = BACKEND_HOST) => ({ host, port, node_uuid: NODE });
const route = (port: number, t: Route['target'], extra: Partial<Route> = {}): Route => ({ application: 'dns', external_port: port, target: t, hold: false, generation: 0, ...extra });

describe('UDP through the proxy', () => {
  it('relays datagrams per client address and sends each answer back to its own client', async () => {
    const backend = await udpBackend('b1');
    const port = await freePort();
    const p = proxy();
    await p.apply({ version: 1, routes: [route(port, target(backend.port), { protocol: 'udp' })] });
    const [a, b] = [await udpClient(), await udpClient()];
    expect(await a.ask(port, PROXY_HOST, 'one')).toBe('b1:one');
    expect(await b.ask(port, PROXY_HOST, 'two')).toBe('b1:two');
    expect(await a.ask(port, PROXY_HOST, 'three')).toBe('b1:three');
    // Two clients, two sessions: the backend saw two distinct sources.
    expect(backend.peers.size).toBe(2);
  });

  it('holds datagrams while the route holds and delivers them to the new target, oldest first', async () => {
    const [old, next] = [await udpBackend('old'), await udpBackend('new')];
    const port = await freePort();
    const p = proxy();
    await p.apply({ version: 1, routes: [route(port, target(old.port), { protocol: 'udp' })] });
    const client = await udpClient();
    expect(await client.ask(port, PROXY_HOST, 'before')).toBe('old:before');
    await p.apply({ version: 2, routes: [route(port, target(old.port), { protocol: 'udp', hold: true })] });
    const got: string[] = [];
    client.socket.on('message', (m) => got.push(m.toString()));
    client.socket.send('held-1', port, PROXY_HOST);
    client.socket.send('held-2', port, PROXY_HOST);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([]); // nothing reached anyone during the hold
    await p.apply({ version: 3, routes: [route(port, target(next.port), { protocol: 'udp' })] });
    await waitFor(() => got.length === 2, 2_000, 'held datagrams answered');
    expect(got).toEqual(['new:held-1', 'new:held-2']);
  });

  it('closes a session after it was idle for the idle timeout', async () => {
    const backend = await udpBackend('b');
    const port = await freePort();
    const p = proxy({ udpIdleTimeoutMs: 200 });
    await p.apply({ version: 1, routes: [route(port, target(backend.port), { protocol: 'udp' })] });
    const client = await udpClient();
    expect(await client.ask(port, PROXY_HOST, 'x')).toBe('b:x');
    await new Promise((r) => setTimeout(r, 500));
    expect(await client.ask(port, PROXY_HOST, 'y')).toBe('b:y');
    // The second datagram came through a new session: the backend saw a second source port.
    expect(backend.peers.size).toBe(2);
  });
});

describe('host addresses and names', () => {
  async function tcpBackend(): Promise<TestServer> {
    const s = await startServer(BACKEND_HOST, echo);
    cleanups.push(() => s.close());
    return s;
  }
  const roundTrip = async (port: number, host: string): Promise<string> => {
    const s = await connectTo(port, host);
    s.end('ping');
    return (await readAll(s)).toString();
  };

  it('listens on a host address only there, not on the node\'s address', async () => {
    const backend = await tcpBackend();
    const port = await freePort();
    const p = proxy();
    await p.apply({ version: 1, routes: [route(port, target(backend.port), { host_ip: '127.0.8.3' })] });
    expect(await roundTrip(port, '127.0.8.3')).toBe('ping');
    await expect(connectTo(port, PROXY_HOST)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('serves a name route at its slot\'s address on the container port, two projects\' db:port apart', async () => {
    const [shop, blog] = [await tcpBackend(), await tcpBackend()];
    const port = await freePort();
    const p = proxy();
    await p.apply({
      version: 1,
      routes: [route(port, target(shop.port), { application: 'db', name_slot: 5 }), route(port, target(blog.port), { application: 'store', name_slot: 6 })],
    });
    expect(await roundTrip(port, '127.0.9.5')).toBe('ping');
    expect(await roundTrip(port, '127.0.9.6')).toBe('ping');
    expect([shop.accepted, blog.accepted]).toEqual([1, 1]);
    expect(p.status().ports.map((s) => s.listen)).toEqual([`tcp 127.0.9.5:${port}`, `tcp 127.0.9.6:${port}`]);
  });

  it('holds a name route\'s connection through a cutover and forwards it to the new node', async () => {
    const [before, after] = [await tcpBackend(), await tcpBackend()];
    const port = await freePort();
    const p = proxy();
    await p.apply({ version: 1, routes: [route(port, target(before.port), { name_slot: 7 })] });
    await p.apply({ version: 2, routes: [route(port, target(before.port), { name_slot: 7, hold: true })] });
    const answer = roundTrip(port, '127.0.9.7');
    await new Promise((r) => setTimeout(r, 100));
    expect(before.accepted).toBe(0);
    await p.apply({ version: 3, routes: [route(port, target(after.port), { name_slot: 7 })] });
    expect(await answer).toBe('ping');
    expect([before.accepted, after.accepted]).toEqual([0, 1]);
  });
});

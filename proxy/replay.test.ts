/**
 * Replay (docs/DESIGN.md §30): an instance that closes or resets a connection before its first
 * byte back has what the client sent replayed on another instance, when that is safe. Real
 * loopback sockets, every engine (the native one as its relay process, native/drover-relay.c).
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Route } from '#common/channel.ts';
import { silentLogger } from '#common/log.ts';
import { createEngine } from './engine.ts';
import { DEFAULT_FORWARDING, RoutingProxy } from './proxy.ts';
import { MAX_REPLAYS, replayVerdict } from './replay.ts';
import type { TcpEngine } from './tcp.ts';
import { connectTo, startServer, waitFor, type TestServer } from './testing/sockets.ts';

const NODE = '00000000-0000-4000-8000-000000000001';
const PROXY_HOST = '127.0.8.21';
const BACKEND_HOST = '127.0.8.22';
const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('which connections are replayed', () => {
  it('replays nothing sent, idempotent HTTP methods and a request line cut short; not POST, other protocols, too much, or too often', () => {
    const b = (s: string | number[]) => (typeof s === 'string' ? Buffer.from(s) : Uint8Array.from(s));
    expect(replayVerdict(b(''), 0)).toBe('replay');
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']) expect(replayVerdict(b(`${m} /x HTTP/1.1\r\n`), 0)).toBe('replay');
    expect(replayVerdict(b('GE'), 1)).toBe('replay');
    expect(replayVerdict(b('POST / HTTP/1.1\r\n\r\n'), 0)).toBe('not-idempotent');
    expect(replayVerdict(b('PATCH / HTTP/1.1\r\n\r\n'), 0)).toBe('not-idempotent');
    expect(replayVerdict(b('get / HTTP/1.1\r\n'), 0)).toBe('not-idempotent');
    expect(replayVerdict(b([0x16, 0x03, 0x01, 0x02]), 0)).toBe('not-idempotent'); // a TLS ClientHello
    expect(replayVerdict(null, 0)).toBe('too-long');
    expect(replayVerdict(b(GET), MAX_REPLAYS)).toBe('too-many');
  });
});

/** An instance that reads a request (`minBytes` of it at least) and goes without answering: FIN (`close`) or RST (`reset`). */
async function dying(how: 'close' | 'reset', seen: string[], minBytes = 1): Promise<TestServer> {
  const s = await startServer(BACKEND_HOST, (sock: Socket) => {
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      const got = Buffer.concat(chunks);
      if (got.length < minBytes || sock.destroyed) return;
      seen.push(got.toString('latin1').split(' ')[0]!);
      if (how === 'reset') sock.resetAndDestroy();
      else sock.destroy();
    });
  });
  cleanups.push(() => s.close());
  return s;
}

/** An instance answering each whole request (up to its blank line) with `good`, then closing. */
async function good(seen: string[]): Promise<TestServer> {
  const s = await startServer(BACKEND_HOST, (sock: Socket) => {
    let got = '';
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        seen.push(got.split(' ')[0]!);
        sock.end('HTTP/1.0 200 OK\r\n\r\ngood');
      }
    });
  });
  cleanups.push(() => s.close());
  return s;
}

/** Sends `request` (then a half-close when asked) and returns what came back, '' when the connection failed. */
async function send(port: number, request: string | Buffer, halfClose = false): Promise<string> {
  const s = await connectTo(port, PROXY_HOST);
  const chunks: Buffer[] = [];
  const done = new Promise<string>((resolve) => {
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.once('error', () => resolve(''));
  });
  s.write(request);
  if (halfClose) s.end();
  const answer = await done;
  s.destroy();
  return answer;
}

describe.each(['uv', 'net', 'native'] as const)('an instance going before it answers (%s engine)', (engineName) => {
  let port = 18_330 + { uv: 0, net: 10, native: 20 }[engineName];

  async function proxyOver(backends: TestServer[]): Promise<{ engine: TcpEngine; port: number }> {
    const engine = createEngine(engineName);
    const p = new RoutingProxy({ engine, listenHost: PROXY_HOST, serviceSubnet: null, options: { ...DEFAULT_FORWARDING }, log: silentLogger() });
    cleanups.push(() => p.stop(100));
    const targets = backends.map((b) => ({ host: BACKEND_HOST, port: b.port, node_uuid: NODE }));
    const route: Route = { application: 'web', external_port: ++port, target: targets[0]!, targets, hold: false, generation: 0 };
    await p.apply({ version: 1, routes: [route] });
    return { engine, port };
  }

  it.each(['close', 'reset'] as const)('replays a GET on another instance when its instance reads it and goes (%s): every request answered', async (how) => {
    const seen: string[] = [];
    const served: string[] = [];
    const { engine, port: p } = await proxyOver([await dying(how, seen), await good(served)]);
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await send(p, GET, i % 2 === 1));
    expect(answers.every((a) => a.endsWith('good'))).toBe(true);
    expect(seen.length).toBeGreaterThanOrEqual(1); // the dying instance got (and dropped) some
    expect(served).toEqual(['GET', 'GET', 'GET', 'GET']);
    // (the native relay reports its counts every 100 ms)
    await waitFor(() => engine.counts().lost === seen.length, 2_000, `lost ${seen.length}, counted ${engine.counts().lost}`);
  });

  it('does not replay a POST the dying instance read: that client\'s connection ends unanswered and no other instance sees it', async () => {
    const seen: string[] = [];
    const served: string[] = [];
    const { port: p } = await proxyOver([await dying('close', seen), await good(served)]);
    expect(await send(p, 'POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}')).toBe('');
    expect(seen).toEqual(['POST']);
    expect(served).toEqual([]);
  });

  it('does not replay a request longer than the bytes it keeps (the buffer size)', async () => {
    const seen: string[] = [];
    const served: string[] = [];
    const big0 = 40_000 + 45;
    const { port: p } = await proxyOver([await dying('close', seen, big0), await good(served)]);
    const big = Buffer.concat([Buffer.from('PUT /blob HTTP/1.1\r\nContent-Length: 40000\r\n\r\n'), Buffer.alloc(40_000, 0x61)]);
    expect(big.length).toBe(big0);
    expect(await send(p, big)).toBe('');
    expect(seen).toEqual(['PUT']);
    expect(served).toEqual([]);
  });
});

/**
 * The TCP engine contract, run against every engine on real loopback sockets. The native
 * engine relays by itself once its listener has a route (`proxyTo`); a listener without one
 * hands each connection to `onInbound`, so the tests that forward by hand run its hand-back.
 */
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DroverError } from '#common/errors.ts';
import { createNetEngine } from './tcp-net.ts';
import { createUvEngine } from './tcp-uv.ts';
import { createNativeEngine } from './tcp-native.ts';
import { silentLogger } from '#common/log.ts';
import type { Inbound, TcpEngine } from './tcp.ts';
import { connectTo, digestReply, echo, fdCount, fdTargets, patternBytes, readAll, sha256, startServer, waitFor, type TestServer } from './testing/sockets.ts';

const HOST = '127.0.0.1';
const engines: [string, () => TcpEngine][] = [
  ['uv', () => createUvEngine({ bufferBytes: 16384 })],
  ['net', () => createNetEngine({ bufferBytes: 16384 })],
  ['native', () => createNativeEngine({ bufferBytes: 16384, connectTimeoutMs: 1000, log: silentLogger() })],
];

describe.each(engines)('the %s engine', (_name, make) => {
  let engine: TcpEngine;
  let backend: TestServer | null = null;
  let fdsBefore = 0;
  let fdTargetsBefore = new Set<string>();

  beforeEach(() => {
    fdsBefore = fdCount();
    fdTargetsBefore = new Set(fdTargets());
    engine = make();
  });
  afterEach(async () => {
    await engine.destroyAll();
    await backend?.close();
    backend = null;
    // Closed handles give their descriptors back within a few event-loop turns; 5 s leaves room
    // for a loaded machine (a leak stays past any bound).
    await waitFor(() => fdCount() <= fdsBefore, 5000, 'descriptors to be released').catch((err: Error) => {
      const left = fdTargets().filter((t) => !fdTargetsBefore.has(t));
      throw new Error(`${err.message}; still open: ${left.join(', ')}; engine counts ${JSON.stringify(engine.counts())}`);
    });
  });

  async function proxyTo(port: number, onFail?: (conn: Inbound, err: DroverError) => void) {
    const listener = await engine.listen(HOST, 0, (conn) => conn.forward({ host: HOST, port }, 1000, onFail ?? ((c) => c.destroy())));
    await listener.route?.({ targets: [{ host: HOST, port }], replay: false, keep: null });
    return listener;
  }

  it('relays a large checksummed stream both ways and leaves nothing open', async () => {
    backend = await startServer(HOST, echo);
    const listener = await proxyTo(backend.port);
    const data = patternBytes(8 * 1024 * 1024, 7);
    const client = await connectTo(listener.port, HOST);
    const received = readAll(client);
    client.end(data);
    expect(sha256(await received)).toBe(sha256(data));
    await waitFor(() => engine.counts().inbound === 0 && engine.counts().outbound === 0, 2000, 'relay to close');
    expect(engine.counts().relayErrors).toBe(0);
    expect(engine.counts().bufferedBytes).toBe(0);
  });

  it('passes a client half-close through and still delivers the reply', async () => {
    backend = await startServer(HOST, digestReply('b'));
    const listener = await proxyTo(backend.port);
    const client = await connectTo(listener.port, HOST);
    const reply = readAll(client);
    client.end('request body');
    expect((await reply).toString()).toBe(`b:${sha256('request body')}`);
  });

  it('passes a backend half-close through and still delivers what the client sends after it', async () => {
    let got: Promise<Buffer> | null = null;
    backend = await startServer(HOST, (s) => {
      got = readAll(s);
      s.end('greeting');
    });
    const listener = await proxyTo(backend.port);
    const client = await connectTo(listener.port, HOST);
    const fromBackend = readAll(client);
    expect((await fromBackend).toString()).toBe('greeting');
    client.end('late words');
    await waitFor(() => got !== null);
    expect((await got!).toString()).toBe('late words');
  });

  it('closes a request per connection cleanly both ways when the backend answers and closes first, then the client', async () => {
    // HTTP with `Connection: close`: the answer and the backend's FIN, then the client's FIN.
    // The relay closes both sockets once both FINs are in; neither peer may see a reset.
    const backendEnds: Promise<string>[] = [];
    backend = await startServer(HOST, (s) => {
      backendEnds.push(
        new Promise((resolve) => {
          s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
          s.on('end', () => resolve('end'));
        }),
      );
      s.once('data', () => s.end('answer'));
    });
    const listener = await proxyTo(backend.port);
    for (let i = 0; i < 20; i++) {
      const client = await connectTo(listener.port, HOST);
      const outcome = new Promise<string>((resolve) => {
        const chunks: Buffer[] = [];
        client.on('data', (d: Buffer) => chunks.push(d));
        client.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        client.on('end', () => {
          client.end();
          resolve(Buffer.concat(chunks).toString());
        });
      });
      client.write('request');
      expect(await outcome).toBe('answer');
    }
    await waitFor(() => backendEnds.length === 20);
    expect(await Promise.all(backendEnds)).toEqual(Array(20).fill('end'));
    await waitFor(() => engine.counts().inbound === 0 && engine.counts().outbound === 0, 2000, 'relays to close');
    expect(engine.counts().relayErrors).toBe(0);
  });

  it('ends the client when the backend resets', async () => {
    backend = await startServer(HOST, (s) => s.once('data', () => s.resetAndDestroy()));
    const listener = await proxyTo(backend.port);
    const client = await connectTo(listener.port, HOST);
    const ended = new Promise<string>((resolve) => {
      client.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      client.on('close', () => resolve('closed'));
    });
    client.write('hello');
    expect(['ECONNRESET', 'EPIPE']).toContain(await ended);
    await waitFor(() => engine.counts().inbound === 0 && engine.counts().outbound === 0, 2000, 'both sides to close');
  });

  it('ends the backend when the client resets', async () => {
    // The backend reads what it is sent and answers an end with its own, as a server does. The
    // proxy resets the backend, but when its last bytes and the reset reach a Node backend in
    // one wake-up, libuv reads the bytes and reports the hang-up as an end without reading the
    // error (its POLLHUP short-circuit). Node emits that end only once the bytes before it are
    // read: a backend that never read them (a paused socket) waited for ever — seen with the
    // native relay under load, the relay's side already closed (ss showed no connection left).
    const backendClosed = new Promise<void>((resolve) => {
      void startServer(HOST, (s) => {
        s.resume();
        s.on('end', () => s.end());
        s.on('close', () => resolve());
      }).then((b) => (backend = b));
    });
    await waitFor(() => backend !== null);
    const listener = await proxyTo(backend!.port);
    const client = await connectTo(listener.port, HOST);
    client.write('x');
    await waitFor(() => backend!.accepted === 1, 2000, 'backend to accept');
    client.resetAndDestroy();
    await backendClosed;
    await waitFor(() => engine.counts().inbound === 0 && engine.counts().outbound === 0, 2000, 'both sides to close');
  });

  it('bounds what it buffers when the reader is slow and the writer fast', async () => {
    const chunk = Buffer.alloc(256 * 1024, 1);
    let written = 0;
    backend = await startServer(HOST, (s) => {
      const pump = (): void => {
        while (written < 64 * 1024 * 1024 && s.write(chunk)) written += chunk.length;
      };
      s.on('drain', pump);
      pump();
    });
    const listener = await proxyTo(backend.port);
    const client = await connectTo(listener.port, HOST);
    client.pause();
    let maxBuffered = 0;
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 10));
      maxBuffered = Math.max(maxBuffered, engine.counts().bufferedBytes);
    }
    // The backend could write far more; the proxy took only what fits its buffer and the
    // kernel's socket buffers, then stopped reading.
    expect(written).toBeLessThan(32 * 1024 * 1024);
    expect(maxBuffered).toBeLessThanOrEqual(2 * 16384 + chunk.length);
    client.destroy();
  });

  it('reports a refused connect and keeps the client paused for a retry that delivers its early bytes', async () => {
    backend = await startServer(HOST, digestReply('late'));
    const failures: string[] = [];
    const listener = await engine.listen(HOST, 0, (conn) => {
      conn.forward({ host: HOST, port: 1 }, 1000, (c, err) => {
        failures.push(String(err.detail.code));
        expect(err.retryable).toBe(true);
        c.forward({ host: HOST, port: backend!.port }, 1000, (c2) => c2.destroy());
      });
    });
    const client = await connectTo(listener.port, HOST);
    const reply = readAll(client);
    client.end('sent before the backend was reachable');
    expect((await reply).toString()).toBe(`late:${sha256('sent before the backend was reachable')}`);
    expect(failures).toEqual(['ECONNREFUSED']);
  });

  it('gives up a connect that gets no answer within the connect timeout', async () => {
    const stuck = await stuckListener();
    const clients: Socket[] = [];
    try {
      let failed!: (err: DroverError) => void;
      const failure = new Promise<DroverError>((resolve) => (failed = resolve));
      const listener = await engine.listen(HOST, 0, (conn) => conn.forward({ host: HOST, port: stuck.port }, 200, (c, err) => (c.destroy(), failed(err))));
      // The first connects fill the stuck listener's accept queue; later SYNs go unanswered.
      for (let i = 0; i < 6; i++) clients.push(await connectTo(listener.port, HOST));
      const err = await failure;
      expect(err.code).toBe('DROVER_BACKEND_UNREACHABLE');
      expect(err.detail.code).toBe('ETIMEDOUT');
    } finally {
      for (const c of clients) c.destroy();
      await stuck.stop();
    }
  });
});

/** A listener in another process that never accepts (its loop is blocked), backlog 1 (0 means Node's default). */
async function stuckListener(): Promise<{ port: number; stop(): Promise<void> }> {
  const script = `const s=require('net').createServer();s.listen({host:'127.0.0.1',port:0,backlog:1},()=>{console.log(s.address().port);Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0,20000)})`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  // 'close', not 'exit': the child's stdout pipe is one of this process's descriptors, and it is
  // closed only after 'exit' (afterEach counts descriptors).
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    port,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}


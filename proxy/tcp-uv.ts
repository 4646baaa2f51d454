/**
 * The fast TCP engine: libuv TCP handles driven directly, without node:net's streams.
 *
 * Why: a `net` + `pipe()` proxy spends most of its CPU in stream machinery (Readable push,
 * 'data' events, Writable queues, a fresh ArrayBuffer per read, a nextTick per write) and
 * reaches ~0.6× HAProxy here (bench/RESULTS.md "Proxy baseline"). This engine reads each direction
 * into one fixed buffer (`useUserBuffer`), writes it straight to the other handle, and only
 * when the kernel cannot take it all at once stops reading that side until the write
 * completes. No allocation per chunk; one buffer in flight per direction.
 *
 * `process.binding('tcp_wrap' | 'stream_wrap')` is Node-internal (DEP0111, documentation-only
 * in Node 20). `loadUvBinding()` returns null when it is missing or changed, and the caller
 * falls back to `tcp-net.ts`. The contract suite runs against both engines.
 */
import { DroverError } from '#common/errors.ts';
import type { Inbound, TcpCounts, TcpEngine, TcpEngineOptions, TcpListener } from './tcp.ts';
import { errName, loadUvBinding, noop, type UvBinding, type UvHandle, type UvReq } from './tcp-uv-binding.ts';
import { onWriteDone, UvInbound, type RelayHost } from './tcp-uv-relay.ts';

export { loadUvBinding };

export function createUvEngine(options: TcpEngineOptions = {}): TcpEngine {
  const uv = loadUvBinding();
  if (uv === null) throw new DroverError('DROVER_ENGINE_UNAVAILABLE', 'this Node does not expose libuv TCP handles; use the net engine');
  return new UvEngine(uv, options.bufferBytes ?? 16384, options.backlog ?? 4096);
}

class UvEngine implements TcpEngine, RelayHost {
  readonly name = 'uv' as const;
  readonly c: TcpCounts = { listeners: 0, inbound: 0, outbound: 0, bufferedBytes: 0, accepted: 0, relayErrors: 0, relayedBytes: 0, lost: 0 };
  readonly live = new Set<UvInbound>();
  readonly listeners = new Set<UvListener>();
  readonly connecting = new Set<UvInbound>();
  private readonly freeBuffers: Buffer[] = [];
  private sweep: NodeJS.Timeout | null = null;
  /**
   * One write request for every write that completes synchronously (the common case): libuv
   * keeps a request only when the write goes async, and then this one is replaced.
   */
  writeReq: UvReq;

  constructor(
    readonly uv: UvBinding,
    readonly bufferBytes: number,
    readonly backlog: number,
  ) {
    this.writeReq = this.newWriteReq();
  }

  newWriteReq(): UvReq {
    const req = this.uv.newWriteReq();
    req.oncomplete = onWriteDone as UvReq['oncomplete'];
    return req;
  }

  async listen(host: string, port: number, onInbound: (conn: Inbound) => void): Promise<TcpListener> {
    const server = this.uv.newServer();
    const err = server.bind(host, port);
    if (err !== 0) {
      server.close(noop);
      throw listenFailed(host, port, err);
    }
    return this.adopt(server, host, onInbound);
  }

  /**
   * Listens on a handle that is bound already — here, or in another process that sent it
   * (worker processes share one listening socket this way and the kernel spreads accepts).
   */
  adopt(server: UvHandle, host: string, onInbound: (conn: Inbound) => void): TcpListener {
    const err = server.listen(this.backlog);
    const name: { port?: number } = {};
    server.getsockname(name);
    if (err !== 0) {
      server.close(noop);
      throw listenFailed(host, name.port ?? 0, err);
    }
    // Accepted sockets inherit TCP_NODELAY from the listening one (Linux copies the listener's
    // TCP state into each child): one setsockopt per port instead of one per connection.
    server.setNoDelay(true);
    const listener = new UvListener(this, server, host, name.port ?? 0, onInbound);
    server.owner = listener;
    server.onconnection = onConnection;
    this.listeners.add(listener);
    this.c.listeners++;
    return listener;
  }

  counts(): TcpCounts {
    return { ...this.c };
  }

  async destroyAll(): Promise<void> {
    await Promise.all([...this.listeners].map((l) => l.close()));
    for (const conn of [...this.live]) conn.destroy();
    this.stopSweep();
    // Descriptors close synchronously; let libuv finish the handles before the caller counts fds.
    for (let i = 0; i < 100 && (this.c.inbound > 0 || this.c.outbound > 0); i++) await new Promise((r) => setImmediate(r));
  }

  takeBuffer(): Buffer {
    return this.freeBuffers.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
  }

  giveBuffer(buf: Buffer): void {
    if (this.freeBuffers.length < 256) this.freeBuffers.push(buf);
  }

  watchConnect(conn: UvInbound): void {
    this.connecting.add(conn);
    // One coarse timer for every pending connect instead of a timer per connection. It stops
    // itself at a sweep that finds nothing pending, not when the set empties: with a new
    // connection per request the set empties after almost every connect, and a timer armed
    // and cleared per connection cost more than the sweeps (bench/RESULTS.md, 2026-12-07).
    if (this.sweep === null) {
      this.sweep = setInterval(() => this.sweepConnects(), 50);
      this.sweep.unref(); // a pending connect's own handle keeps the process up
    }
  }

  unwatchConnect(conn: UvInbound): void {
    this.connecting.delete(conn);
  }

  private sweepConnects(): void {
    if (this.connecting.size === 0) return this.stopSweep();
    const now = performance.now();
    for (const conn of this.connecting) if (now >= conn.connectDeadline) conn.connectTimedOut();
  }

  private stopSweep(): void {
    if (this.sweep !== null) clearInterval(this.sweep);
    this.sweep = null;
  }
}

class UvListener implements TcpListener {
  private closing: Promise<void> | null = null;
  constructor(
    readonly engine: UvEngine,
    readonly server: UvHandle,
    readonly host: string,
    readonly port: number,
    readonly onInbound: (conn: Inbound) => void,
  ) {}

  close(): Promise<void> {
    this.closing ??= new Promise((resolve) => {
      this.server.onconnection = noop;
      this.server.close(() => {
        this.engine.listeners.delete(this);
        this.engine.c.listeners--;
        resolve();
      });
    });
    return this.closing;
  }
}

/** The listening handle under a uv engine's listener (to hand to a worker); null for others. */
export function listenerHandle(listener: TcpListener): UvHandle | null {
  return listener instanceof UvListener ? listener.server : null;
}

/**
 * A socket bound to `host:port` and not listening, for an engine that listens on it elsewhere
 * (the native relay). Throws DROVER_LISTEN_FAILED like `listen`.
 */
export function bindSocket(engine: TcpEngine, host: string, port: number): { handle: UvHandle; port: number } {
  if (!(engine instanceof UvEngine)) throw new DroverError('DROVER_ENGINE_UNAVAILABLE', 'only the uv engine binds sockets for another');
  const handle = engine.uv.newServer();
  const err = handle.bind(host, port);
  if (err !== 0) {
    handle.close(noop);
    throw listenFailed(host, port, err);
  }
  const name: { port?: number } = {};
  handle.getsockname(name);
  return { handle, port: name.port ?? port };
}

export { listenFailed };

/** A connected client socket accepted elsewhere (the native relay handed it back), paused. */
export function adoptConnection(engine: TcpEngine, client: UvHandle, waitedMs: number, forwarded = false): Inbound {
  if (!(engine instanceof UvEngine)) throw new DroverError('DROVER_ENGINE_UNAVAILABLE', 'only the uv engine adopts connections');
  engine.c.inbound++;
  const conn = new UvInbound(engine, client);
  conn.waitedMs = waitedMs;
  conn.forwarded = forwarded;
  engine.live.add(conn);
  return conn;
}

/** Listens on a handle bound elsewhere (a worker's share of the primary's socket). */
export function adoptListener(engine: TcpEngine, handle: UvHandle, host: string, onInbound: (conn: Inbound) => void): TcpListener {
  if (!(engine instanceof UvEngine)) throw new DroverError('DROVER_ENGINE_UNAVAILABLE', 'only the uv engine can listen on a shared socket');
  return engine.adopt(handle, host, onInbound);
}

function listenFailed(host: string, port: number, status: number): DroverError {
  const code = errName(status);
  return new DroverError('DROVER_LISTEN_FAILED', `cannot listen on ${host}:${port}: ${code}`, {
    retryable: code === 'EADDRINUSE',
    detail: { host, port, code },
  });
}

function onConnection(this: UvHandle, status: number, client: UvHandle | undefined): void {
  const listener = this.owner as UvListener;
  if (status !== 0 || client === undefined) return; // EMFILE and the like: libuv keeps listening
  const engine = listener.engine;
  engine.c.accepted++;
  engine.c.inbound++;
  const conn = new UvInbound(engine, client);
  engine.live.add(conn);
  listener.onInbound(conn);
}


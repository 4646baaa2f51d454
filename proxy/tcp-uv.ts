/**
 * The fast TCP engine: libuv TCP handles driven directly, without node:net's streams.
 *
 * Why: a `net` + `pipe()` proxy spends most of its CPU in stream machinery (Readable push,
 * 'data' events, Writable queues, a fresh ArrayBuffer per read, a nextTick per write) and
 * reaches ~0.6× HAProxy here (reference/proxy-baseline.md). This engine reads each direction
 * into one fixed buffer (`useUserBuffer`), writes it straight to the other handle, and only
 * when the kernel cannot take it all at once stops reading that side until the write
 * completes. No allocation per chunk; one buffer in flight per direction.
 *
 * `process.binding('tcp_wrap' | 'stream_wrap')` is Node-internal (DEP0111, documentation-only
 * in Node 20). `loadUvBinding()` returns null when it is missing or changed, and the caller
 * falls back to `tcp-net.ts`. The contract suite runs against both engines.
 */
import { getSystemErrorName } from 'node:util';
import { DroverError } from '#common/errors.ts';
import type { ConnectFailed, Endpoint, Inbound, TcpCounts, TcpEngine, TcpEngineOptions, TcpListener } from './tcp.ts';
import { RETRYABLE_CONNECT_ERRORS } from './tcp.ts';

// ------------------------------------------------------------------ the binding (typed)

interface UvHandle {
  owner: unknown;
  onread: () => unknown;
  onconnection: (status: number, client: UvHandle | undefined) => void;
  bind(host: string, port: number): number;
  listen(backlog: number): number;
  connect(req: UvReq, host: string, port: number): number;
  getsockname(out: { address?: string; port?: number }): number;
  setNoDelay(on: boolean): number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buf: Uint8Array): void;
  writeBuffer(req: UvReq, buf: Uint8Array): number;
  shutdown(req: UvReq): number;
  close(cb?: (this: UvHandle) => void): void;
  reset(cb?: (this: UvHandle) => void): number;
}
interface UvReq {
  oncomplete: ((this: UvReq, status: number) => void) | null;
  handle?: UvHandle;
  owner?: unknown;
  address?: string;
  port?: number;
  async?: boolean;
}
interface UvBinding {
  newServer(): UvHandle;
  newSocket(): UvHandle;
  newConnectReq(): UvReq;
  newWriteReq(): UvReq;
  newShutdownReq(): UvReq;
  state: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

const UV_EOF = -4095;

/** The libuv binding, or null when this Node does not expose it as Node 20 does. */
export function loadUvBinding(): UvBinding | null {
  try {
    const bind = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const tcp = bind('tcp_wrap') as { TCP: new (type: number) => UvHandle; TCPConnectWrap: new () => UvReq; constants: { SOCKET: number; SERVER: number } };
    const stream = bind('stream_wrap') as {
      WriteWrap: new () => UvReq;
      ShutdownWrap: new () => UvReq;
      streamBaseState: Int32Array;
      kReadBytesOrError: number;
      kLastWriteWasAsync: number;
    };
    const proto = tcp.TCP.prototype as unknown as Record<string, unknown>;
    for (const m of ['useUserBuffer', 'writeBuffer', 'readStart', 'shutdown', 'connect', 'getsockname', 'reset']) {
      if (typeof proto[m] !== 'function') return null;
    }
    if (!(stream.streamBaseState instanceof Int32Array) || typeof stream.kReadBytesOrError !== 'number') return null;
    return {
      newServer: () => new tcp.TCP(tcp.constants.SERVER),
      newSocket: () => new tcp.TCP(tcp.constants.SOCKET),
      newConnectReq: () => new tcp.TCPConnectWrap(),
      newWriteReq: () => new stream.WriteWrap(),
      newShutdownReq: () => new stream.ShutdownWrap(),
      state: stream.streamBaseState,
      kReadBytesOrError: stream.kReadBytesOrError,
      kLastWriteWasAsync: stream.kLastWriteWasAsync,
    };
  } catch {
    return null;
  }
}

function errName(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return `E${-status}`;
  }
}

// ------------------------------------------------------------------ relay state

const PAUSED = 0;
const CONNECTING = 1;
const RELAYING = 2;
const CLOSED = 3;

/** One direction of a relay: read `from`, write `to`. */
class Direction {
  pending = 0; // bytes whose write has not completed
  ended = false; // EOF read and `to` shut down (or about to close)
  view: Buffer; // the last view of `buf` written; request/response traffic repeats lengths
  constructor(
    readonly conn: UvInbound,
    readonly from: UvHandle,
    readonly to: UvHandle,
    readonly buf: Buffer,
  ) {
    this.view = buf;
  }
}

export function createUvEngine(options: TcpEngineOptions = {}): TcpEngine {
  const uv = loadUvBinding();
  if (uv === null) throw new DroverError('DROVER_ENGINE_UNAVAILABLE', 'this Node does not expose libuv TCP handles; use the net engine');
  return new UvEngine(uv, options.bufferBytes ?? 16384, options.backlog ?? 4096);
}

class UvEngine implements TcpEngine {
  readonly name = 'uv' as const;
  readonly c: TcpCounts = { listeners: 0, inbound: 0, outbound: 0, bufferedBytes: 0, accepted: 0, relayErrors: 0 };
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
    // One coarse timer for every pending connect instead of a timer per connection.
    this.sweep ??= setInterval(() => this.sweepConnects(), 50);
  }

  unwatchConnect(conn: UvInbound): void {
    this.connecting.delete(conn);
    if (this.connecting.size === 0 && this.sweep !== null) {
      clearInterval(this.sweep);
      this.sweep = null;
    }
  }

  private sweepConnects(): void {
    const now = performance.now();
    for (const conn of this.connecting) if (now >= conn.connectDeadline) conn.connectTimedOut();
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

function noop(): void {}

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

class UvInbound implements Inbound {
  state = PAUSED;
  upstream: UvHandle | null = null;
  connectReq: UvReq | null = null;
  connectDeadline = 0;
  onConnectFailed: ConnectFailed | null = null;
  since = 0;
  target: Endpoint | null = null;
  up: Direction | null = null; // client → backend
  down: Direction | null = null; // backend → client
  openHandles = 1;

  constructor(
    readonly engine: UvEngine,
    readonly client: UvHandle,
  ) {
    client.owner = this;
  }

  get closed(): boolean {
    return this.state === CLOSED;
  }

  forward(target: Endpoint, connectTimeoutMs: number, onConnectFailed: ConnectFailed): void {
    if (this.state !== PAUSED) return;
    const { engine } = this;
    const upstream = engine.uv.newSocket();
    upstream.owner = this;
    const req = engine.uv.newConnectReq();
    req.oncomplete = afterConnect as UvReq['oncomplete'];
    req.owner = this;
    req.address = target.host;
    req.port = target.port;
    this.target = target;
    this.onConnectFailed = onConnectFailed;
    this.upstream = upstream;
    this.openHandles++;
    engine.c.outbound++;
    const err = upstream.connect(req, target.host, target.port);
    if (err !== 0) return this.connectFailed(errName(err));
    this.state = CONNECTING;
    this.connectReq = req;
    this.connectDeadline = performance.now() + connectTimeoutMs;
    engine.watchConnect(this);
  }

  connectTimedOut(): void {
    this.connectFailed('ETIMEDOUT');
  }

  /** Drops the backend handle and hands the failure back, the client still paused. */
  connectFailed(code: string): void {
    const { engine } = this;
    engine.unwatchConnect(this);
    this.connectReq = null;
    if (this.upstream !== null) closeHandle(this.upstream);
    this.upstream = null;
    if (this.state === CLOSED) return;
    this.state = PAUSED;
    const target = this.target;
    const cb = this.onConnectFailed;
    this.onConnectFailed = null;
    cb?.(
      this,
      new DroverError('DROVER_BACKEND_UNREACHABLE', `cannot connect to ${target?.host}:${target?.port}: ${code}`, {
        retryable: RETRYABLE_CONNECT_ERRORS.has(code),
        detail: { host: target?.host, port: target?.port, code },
      }),
    );
  }

  connected(): void {
    const { engine, client } = this;
    const upstream = this.upstream!;
    engine.unwatchConnect(this);
    this.connectReq = null;
    this.onConnectFailed = null;
    this.state = RELAYING;
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.up = startDirection(this, client, upstream);
    this.down = startDirection(this, upstream, client);
  }

  /**
   * Ends the relay: both handles close (with a reset when `reset`, so an error on one side is
   * not mistaken for a clean end on the other); buffers return to the pool once both have.
   */
  destroy(reset = false): void {
    if (this.state === CLOSED) return;
    if (this.state === CONNECTING) this.engine.unwatchConnect(this);
    this.state = CLOSED;
    this.connectReq = null;
    this.onConnectFailed = null;
    closeHandle(this.client, reset);
    if (this.upstream !== null) closeHandle(this.upstream, reset);
  }

  /**
   * A handle of this relay is closing. libuv closes a TCP handle's descriptor synchronously in
   * uv_close and stops reading into our buffer, so the accounting happens here and not in a
   * close callback (one JS callback less per handle).
   */
  handleClosed(handle: UvHandle): void {
    const { engine } = this;
    if (handle === this.client) {
      engine.c.inbound--;
      engine.live.delete(this);
    } else {
      engine.c.outbound--;
    }
    if (--this.openHandles > 0) return;
    for (const d of [this.up, this.down]) {
      if (d === null) continue;
      engine.c.bufferedBytes -= d.pending;
      d.pending = 0;
      engine.giveBuffer(d.buf);
    }
  }
}

function closeHandle(handle: UvHandle, reset = false): void {
  handle.onread = noop; // must stay a function: Node asserts on anything else
  // reset fails (EINVAL) while a shutdown is pending; a plain close is what is left then.
  if (!reset || handle.reset() !== 0) handle.close();
  (handle.owner as UvInbound).handleClosed(handle);
}

function afterConnect(this: UvReq, status: number): void {
  const conn = this.owner as UvInbound;
  if (conn.connectReq !== this) return; // timed out or destroyed meanwhile
  if (status !== 0) return conn.connectFailed(errName(status));
  conn.connected();
}

function startDirection(conn: UvInbound, from: UvHandle, to: UvHandle): Direction {
  const d = new Direction(conn, from, to, conn.engine.takeBuffer());
  from.useUserBuffer(d.buf);
  from.owner = conn;
  (from as unknown as { dir: Direction }).dir = d;
  from.onread = onRead;
  const err = from.readStart();
  if (err !== 0) relayFailed(conn);
  return d;
}

function relayFailed(conn: UvInbound): void {
  if (conn.state !== CLOSED) conn.engine.c.relayErrors++;
  conn.destroy(true);
}

function onRead(this: UvHandle): void {
  const d = (this as unknown as { dir: Direction }).dir;
  const conn = d.conn;
  const uv = conn.engine.uv;
  const n = uv.state[uv.kReadBytesOrError]!;
  if (conn.state === CLOSED) return;
  if (n > 0) {
    const engine = conn.engine;
    const req = engine.writeReq;
    req.owner = d;
    let view = d.view;
    if (view.length !== n) d.view = view = d.buf.subarray(0, n);
    const err = d.to.writeBuffer(req, view);
    if (err !== 0) return relayFailed(conn);
    if (uv.state[uv.kLastWriteWasAsync] !== 0) {
      // The kernel took part of it; libuv holds the rest in our buffer. Stop reading until
      // it is written: this is the backpressure, and what keeps the buffer ours.
      engine.writeReq = engine.newWriteReq();
      d.pending = n;
      engine.c.bufferedBytes += n;
      d.from.readStop();
    }
    return;
  }
  if (n === 0) return;
  if (n !== UV_EOF) return relayFailed(conn);
  d.from.readStop();
  const other = d === conn.up ? conn.down : conn.up;
  if (other?.ended) {
    // Both sides have sent FIN and everything read was written: close both now. The kernel
    // still delivers what sits in the send buffers, then its own FIN.
    d.ended = true;
    return conn.destroy();
  }
  // Half-close: shut the other side down once its pending writes are out (uv_shutdown waits).
  const sreq = uv.newShutdownReq();
  sreq.handle = d.to;
  sreq.owner = d;
  sreq.oncomplete = onShutdownDone as UvReq['oncomplete'];
  const err = d.to.shutdown(sreq);
  if (err === 1) onShutdownDone.call(sreq, 0); // completed synchronously
  else if (err !== 0) relayFailed(conn);
}

function onWriteDone(this: UvReq, status: number): void {
  const d = this.owner as Direction;
  const conn = d.conn;
  conn.engine.c.bufferedBytes -= d.pending;
  d.pending = 0;
  if (conn.state === CLOSED) return;
  if (status !== 0) return relayFailed(conn);
  if (d.from.readStart() !== 0) relayFailed(conn);
}

function onShutdownDone(this: UvReq, status: number): void {
  const d = this.owner as Direction;
  const conn = d.conn;
  if (conn.state === CLOSED) return;
  // ENOTCONN: the peer is already gone; the relay ends below or by the other direction.
  if (status !== 0 && errName(status) !== 'ENOTCONN') return relayFailed(conn);
  d.ended = true;
  if (conn.up?.ended && conn.down?.ended) conn.destroy();
}

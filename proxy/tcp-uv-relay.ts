/**
 * One relay of the fast engine: an accepted client handle, its backend handle, and the two
 * directions between them (see `tcp.ts` for the semantics, `tcp-uv.ts` for why). Every
 * callback here is a shared function reading its state from the handle or request it fires on,
 * so a connection allocates no closures.
 */
import { DroverError } from '#common/errors.ts';
import type { ConnectFailed, Endpoint, Inbound, TcpCounts, UpstreamLost } from './tcp.ts';
import { RETRYABLE_CONNECT_ERRORS } from './tcp.ts';
import { errName, noop, UV_EOF, type UvBinding, type UvHandle, type UvReq } from './tcp-uv-binding.ts';
import { keep, lost, replayKept } from './tcp-uv-replay.ts';

/** What a relay needs from its engine. */
export interface RelayHost {
  readonly uv: UvBinding;
  readonly c: TcpCounts;
  readonly live: Set<UvInbound>;
  writeReq: UvReq;
  newWriteReq(): UvReq;
  takeBuffer(): Buffer;
  giveBuffer(buf: Buffer): void;
  watchConnect(conn: UvInbound): void;
  unwatchConnect(conn: UvInbound): void;
}

export const PAUSED = 0;
const CONNECTING = 1;
export const RELAYING = 2;
const CLOSED = 3;

/** One direction of a relay: read `from`, write `to`. */
export class Direction {
  pending = 0; // bytes whose write has not completed
  ended = false; // EOF read and `to` shut down (or about to close)
  eof = false; // EOF read from `from`: nothing more will come this way
  stale = false; // its backend was dropped for a replay: late callbacks are ignored
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

export class UvInbound implements Inbound {
  state = PAUSED;
  waitedMs = 0;
  forwarded = false;
  upstream: UvHandle | null = null;
  connectReq: UvReq | null = null;
  connectDeadline = 0;
  onConnectFailed: ConnectFailed | null = null;
  since = 0;
  target: Endpoint | null = null;
  up: Direction | null = null; // client → backend
  down: Direction | null = null; // backend → client
  openHandles = 1;
  // Replay (docs/DESIGN.md §30): what the client sent until the backend's first byte, when
  // `onLost` is given; keptLen -1 once it outgrew `kept`. Bytes below keptLen never change.
  onLost: UpstreamLost | null = null;
  kept: Buffer | null = null;
  keptLen = 0;
  keptWritten = false; // a replay write may still point into `kept`: it never goes back to the pool
  answered = false;
  clientEnded = false;

  constructor(
    readonly engine: RelayHost,
    readonly client: UvHandle,
  ) {
    client.owner = this;
  }

  get closed(): boolean {
    return this.state === CLOSED;
  }

  forward(target: Endpoint, connectTimeoutMs: number, onConnectFailed: ConnectFailed, onLost?: UpstreamLost): void {
    if (this.state !== PAUSED) return;
    const { engine } = this;
    this.onLost = onLost ?? null;
    if (onLost !== undefined && this.kept === null && this.keptLen === 0 && !this.answered) this.kept = engine.takeBuffer();
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
    upstream.setNoDelay(true); // the client has it from the listener (tcp-uv.ts adopt)
    if (this.keptLen > 0 && !replayKept(this, upstream)) return;
    this.down = startDirection(this, upstream, client);
    if (this.clientEnded) {
      // The client's FIN came before the first backend went: pass it on after the replay.
      this.up = new Direction(this, client, upstream, engine.takeBuffer());
      shutdownTo(this.up);
    } else this.up = startDirection(this, client, upstream);
  }

  /** True when the backend ending now may be replaced: `onLost` was given and nothing came back. */
  get replayable(): boolean {
    return this.onLost !== null && !this.answered && this.state === RELAYING;
  }

  /** The backend went before answering (`tcp-uv-replay.ts`). */
  lost(code: string): void {
    lost(this, code);
  }

  /** Stops keeping what the client sends (an answer came, or it outgrew the buffer). */
  releaseKept(): void {
    if (this.kept !== null && !this.keptWritten) this.engine.giveBuffer(this.kept);
    this.kept = null;
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
    this.releaseKept();
    for (const d of [this.up, this.down]) {
      if (d === null) continue;
      engine.c.bufferedBytes -= d.pending;
      d.pending = 0;
      engine.giveBuffer(d.buf);
    }
  }
}

/** Set on a handle while a uv_shutdown on it is in flight. */
type ShutdownMark = { shutdownPending?: boolean };

export function closeHandle(handle: UvHandle, reset = false): void {
  handle.onread = noop; // must stay a function: Node asserts on anything else
  // uv_tcp_close_reset refuses (EINVAL) while a shutdown is pending, and Node's reset() marks
  // the handle closing even then, so a close() after it does nothing and the descriptor
  // leaks: a handle with a shutdown in flight gets a plain close, never a reset.
  if (reset && !(handle as ShutdownMark).shutdownPending) handle.reset();
  else handle.close();
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

export function relayFailed(conn: UvInbound, byBackend = false): void {
  if (byBackend && conn.replayable) return conn.lost('ECONNRESET');
  if (conn.state !== CLOSED) conn.engine.c.relayErrors++;
  conn.destroy(true);
}

/** Half-closes `d.to` once its pending writes are out (uv_shutdown waits). */
function shutdownTo(d: Direction): void {
  const conn = d.conn;
  const uv = conn.engine.uv;
  const sreq = uv.newShutdownReq();
  sreq.handle = d.to;
  sreq.owner = d;
  sreq.oncomplete = onShutdownDone as UvReq['oncomplete'];
  (d.to as ShutdownMark).shutdownPending = true;
  const err = d.to.shutdown(sreq);
  if (err === 1) onShutdownDone.call(sreq, 0); // completed synchronously
  else if (err !== 0) relayFailed(conn, d.to === conn.upstream);
}

function onRead(this: UvHandle): void {
  const d = (this as unknown as { dir: Direction }).dir;
  const conn = d.conn;
  const uv = conn.engine.uv;
  const n = uv.state[uv.kReadBytesOrError]!;
  if (conn.state === CLOSED) return;
  if (n > 0) {
    const engine = conn.engine;
    if (d === conn.up) {
      if (conn.kept !== null) keep(conn, d.buf, n);
    } else if (!conn.answered) {
      conn.answered = true;
      conn.releaseKept();
    }
    const req = engine.writeReq;
    req.owner = d;
    let view = d.view;
    if (view.length !== n) d.view = view = d.buf.subarray(0, n);
    const err = d.to.writeBuffer(req, view);
    if (err !== 0) return relayFailed(conn, d === conn.up);
    engine.c.relayedBytes += n;
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
  if (d === conn.down && conn.replayable) return conn.lost(n === UV_EOF ? 'EOF' : errName(n));
  if (n !== UV_EOF) return relayFailed(conn);
  d.from.readStop();
  d.eof = true;
  if (d === conn.up) conn.clientEnded = true;
  const other = d === conn.up ? conn.down : conn.up;
  // (Not after a replay: its write of the kept bytes is not counted in `pending`.)
  if (other !== null && (other.ended || (other.eof && other.pending === 0 && !conn.keptWritten))) {
    // Both sides have sent FIN and everything read was handed to the kernel (reading stops
    // while a write is pending, so this side's is done): close both now, without waiting for
    // the other side's shutdown and without one of our own. The kernel still delivers what
    // sits in the send buffers, then its FIN — the same packets as shutdown then close, one
    // syscall and one callback fewer per connection (a shutdown still in flight is cancelled;
    // its FIN goes with the close).
    d.ended = true;
    return conn.destroy();
  }
  shutdownTo(d);
}

export function onWriteDone(this: UvReq, status: number): void {
  const d = this.owner as Direction;
  const conn = d.conn;
  conn.engine.c.bufferedBytes -= d.pending;
  d.pending = 0;
  if (conn.state === CLOSED || d.stale) return;
  if (status !== 0) return relayFailed(conn, d === conn.up);
  if (d.from.readStart() !== 0) relayFailed(conn);
}

function onShutdownDone(this: UvReq, status: number): void {
  const d = this.owner as Direction;
  (d.to as ShutdownMark).shutdownPending = false;
  const conn = d.conn;
  if (conn.state === CLOSED || d.stale) return;
  // ENOTCONN: the peer is already gone; the relay ends below or by the other direction.
  if (status !== 0 && errName(status) !== 'ENOTCONN') return relayFailed(conn, d === conn.up);
  d.ended = true;
  if (conn.up?.ended && conn.down?.ended) conn.destroy();
}

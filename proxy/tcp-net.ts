/**
 * The portable TCP engine on the public `node:net` API (the only file of the proxy that
 * imports it). Slower than `tcp-uv.ts` — every chunk goes through stream machinery — but it
 * depends on nothing internal, so it is the fallback and the reference the contract suite
 * holds the fast engine to.
 *
 * Not `pipe()`: pipe leaves the other side open on error and `stream.pipeline` destroys
 * half-closed sockets. Each direction is wired by
 * hand: write, pause the reader when `write` returns false, resume on 'drain', `end()` on EOF.
 */
import { createServer, Socket, type Server } from 'node:net';
import { DroverError } from '#common/errors.ts';
import type { ConnectFailed, Endpoint, Inbound, TcpCounts, TcpEngine, TcpEngineOptions, TcpListener, UpstreamLost } from './tcp.ts';
import { RETRYABLE_CONNECT_ERRORS } from './tcp.ts';

export function createNetEngine(options: TcpEngineOptions = {}): TcpEngine {
  return new NetEngine(options.bufferBytes ?? 16384, options.backlog ?? 4096);
}

class NetEngine implements TcpEngine {
  readonly name = 'net' as const;
  readonly c: TcpCounts = { listeners: 0, inbound: 0, outbound: 0, bufferedBytes: 0, accepted: 0, relayErrors: 0, relayedBytes: 0, lost: 0 };
  readonly live = new Set<NetInbound>();
  private readonly servers = new Set<NetListener>();

  constructor(
    readonly bufferBytes: number,
    readonly backlog: number,
  ) {}

  listen(host: string, port: number, onInbound: (conn: Inbound) => void): Promise<TcpListener> {
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true, highWaterMark: this.bufferBytes });
    server.on('connection', (socket: Socket) => {
      this.c.accepted++;
      this.c.inbound++;
      const conn = new NetInbound(this, socket);
      this.live.add(conn);
      onInbound(conn);
    });
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'EUNKNOWN';
        reject(
          new DroverError('DROVER_LISTEN_FAILED', `cannot listen on ${host}:${port}: ${code}`, {
            retryable: code === 'EADDRINUSE',
            detail: { host, port, code },
            cause: err,
          }),
        );
      });
      server.listen({ host, port, backlog: this.backlog }, () => {
        const address = server.address();
        const listener = new NetListener(this, server, host, typeof address === 'object' && address ? address.port : port);
        this.servers.add(listener);
        this.c.listeners++;
        resolve(listener);
      });
    });
  }

  counts(): TcpCounts {
    let buffered = 0;
    for (const conn of this.live) buffered += conn.buffered();
    return { ...this.c, bufferedBytes: buffered };
  }

  async destroyAll(): Promise<void> {
    await Promise.all([...this.servers].map((s) => s.close()));
    for (const conn of [...this.live]) conn.destroy();
    for (let i = 0; i < 100 && (this.c.inbound > 0 || this.c.outbound > 0); i++) await new Promise((r) => setImmediate(r));
  }

  forget(listener: NetListener): void {
    if (this.servers.delete(listener)) this.c.listeners--;
  }
}

class NetListener implements TcpListener {
  private closing: Promise<void> | null = null;
  constructor(
    private readonly engine: NetEngine,
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  close(): Promise<void> {
    // server.close() waits for every connection to end; resolve once the port is closed.
    this.closing ??= new Promise((resolve) => {
      this.server.close();
      this.engine.forget(this);
      setImmediate(resolve);
    });
    return this.closing;
  }
}

class NetInbound implements Inbound {
  private upstream: Socket | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  private relaying = false;
  private done = false;
  private wired = false;
  // Replay (docs/DESIGN.md §30): the client's chunks until the backend's first byte, when
  // `onLost` is given; keptLen -1 once they outgrew the buffer size. Chunks are never reused.
  private onLost: UpstreamLost | null = null;
  private kept: Buffer[] = [];
  private keptLen = 0;
  private answered = false;
  private clientEnded = false;
  since = 0;

  constructor(
    private readonly engine: NetEngine,
    private readonly client: Socket,
  ) {
    client.on('error', () => this.fail());
    client.on('close', () => {
      this.done = true;
      engine.c.inbound--;
      engine.live.delete(this);
      if (this.upstream === null || !this.relaying) this.destroy();
    });
  }

  get closed(): boolean {
    return this.done;
  }

  buffered(): number {
    return this.client.writableLength + (this.upstream?.writableLength ?? 0);
  }

  forward(target: Endpoint, connectTimeoutMs: number, onConnectFailed: ConnectFailed, onLost?: UpstreamLost): void {
    if (this.done || this.upstream !== null) return;
    const engine = this.engine;
    this.onLost = onLost ?? null;
    const upstream = new Socket({ allowHalfOpen: true });
    this.upstream = upstream;
    engine.c.outbound++;
    let settled = false;
    const failConnect = (code: string): void => {
      if (settled) return;
      settled = true;
      if (this.connectTimer) clearTimeout(this.connectTimer);
      this.connectTimer = null;
      this.upstream = null;
      upstream.destroy();
      if (this.done) return;
      onConnectFailed(
        this,
        new DroverError('DROVER_BACKEND_UNREACHABLE', `cannot connect to ${target.host}:${target.port}: ${code}`, {
          retryable: RETRYABLE_CONNECT_ERRORS.has(code),
          detail: { host: target.host, port: target.port, code },
        }),
      );
    };
    upstream.once('close', () => engine.c.outbound--);
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!settled) failConnect(err.code ?? 'EUNKNOWN');
      else if (this.replayable(upstream)) this.lost(upstream, err.code ?? 'EUNKNOWN');
      else this.fail();
    });
    // net.connect's `timeout` is an idle timeout; a connect deadline needs its own timer.
    this.connectTimer = setTimeout(() => failConnect('ETIMEDOUT'), connectTimeoutMs);
    upstream.connect({ host: target.host, port: target.port, noDelay: true }, () => {
      if (settled) return;
      settled = true;
      if (this.connectTimer) clearTimeout(this.connectTimer);
      this.connectTimer = null;
      if (this.done) return void upstream.destroy();
      this.relaying = true;
      this.client.setNoDelay(true);
      if (this.keptLen > 0) upstream.write(Buffer.concat(this.kept, this.keptLen));
      if (this.clientEnded) upstream.end();
      this.wireUpstream(upstream);
      this.wireClient();
      if (!this.clientEnded) this.client.resume();
    });
  }

  /** The backend's bytes go to the client; its end too, unless it went before answering (replay). */
  private wireUpstream(upstream: Socket): void {
    const { client } = this;
    const counts = this.engine.c;
    upstream.on('data', (chunk: Buffer) => {
      if (!this.answered) [this.answered, this.kept] = [true, []];
      counts.relayedBytes += chunk.length;
      if (!client.write(chunk)) upstream.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('end', () => (this.replayable(upstream) ? this.lost(upstream, 'EOF') : client.end()));
  }

  /** The client's side, once: its bytes go to whichever backend is current (and are kept for a replay). */
  private wireClient(): void {
    if (this.wired) return;
    this.wired = true;
    const { client } = this;
    const counts = this.engine.c;
    client.on('data', (chunk: Buffer) => {
      if (this.onLost !== null && !this.answered && this.keptLen >= 0) this.keep(chunk);
      const upstream = this.upstream;
      if (upstream === null || !this.relaying) return; // kept: it goes out with the replay
      counts.relayedBytes += chunk.length;
      if (!upstream.write(chunk)) client.pause();
    });
    client.on('drain', () => this.upstream?.resume());
    client.on('end', () => {
      this.clientEnded = true;
      if (this.relaying) this.upstream?.end();
    });
  }

  private keep(chunk: Buffer): void {
    if (this.keptLen + chunk.length > this.engine.bufferBytes) [this.keptLen, this.kept] = [-1, []];
    else {
      this.kept.push(chunk);
      this.keptLen += chunk.length;
    }
  }

  private replayable(upstream: Socket): boolean {
    return this.onLost !== null && !this.answered && this.relaying && this.upstream === upstream && !this.done;
  }

  /** The backend went before answering: drop it, pause the client, hand the connection back. */
  private lost(upstream: Socket, code: string): void {
    const cb = this.onLost!;
    this.engine.c.lost++;
    this.onLost = null;
    this.relaying = false;
    this.upstream = null;
    this.client.pause();
    upstream.removeAllListeners('data');
    upstream.removeAllListeners('end');
    upstream.removeAllListeners('drain');
    upstream.destroy();
    const sent = this.keptLen < 0 ? null : Buffer.concat(this.kept, this.keptLen);
    cb(this, sent, new DroverError('DROVER_BACKEND_LOST', `${upstream.remoteAddress ?? 'the backend'} closed before answering: ${code}`, { retryable: true, detail: { code } }));
  }

  /**
   * An error on either side ends both, with a reset so the other side does not take it for a
   * clean end. Clean ends close each socket by itself (allowHalfOpen).
   */
  private fail(): void {
    if (!this.relaying) return this.destroy();
    if (!(this.client.destroyed && this.upstream?.destroyed)) this.engine.c.relayErrors++;
    this.done = true;
    if (!this.client.destroyed) this.client.resetAndDestroy();
    if (this.upstream && !this.upstream.destroyed) this.upstream.resetAndDestroy();
  }

  destroy(): void {
    this.done = true;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.client.destroy();
    this.upstream?.destroy();
  }
}

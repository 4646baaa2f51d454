/**
 * The native engine (docs/DESIGN.md §32): each port's socket is bound here and given to the C
 * relay (native/drover-relay.c, started by `relay-process.ts`), which accepts, balances,
 * connects, relays and replays without a JavaScript callback per connection. Node stays the
 * control plane: `TcpListener.route` tells the relay where a port's connections go, and what
 * the relay does not serve comes back here as an `Inbound` of an inner uv engine, unread —
 * every connection while the route holds (the hold queue, deadline and bound of DESIGN.md stay
 * in `port-forwarder.ts`), and one whose connects every instance refused (the retry timer).
 *
 * Counts: the relay's totals (pushed every 100 ms when they change) plus the inner engine's.
 */
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { Endpoint, Inbound, ListenerCounted, ListenerRoute, TcpCounts, TcpEngine, TcpEngineOptions, TcpListener } from './tcp.ts';
import { errName, noop, type UvHandle } from './tcp-uv-binding.ts';
import { adoptConnection, bindSocket, createUvEngine, listenFailed } from './tcp-uv.ts';
import { RelayProcess, relayBinary } from './relay-process.ts';

export { relayBinary };

export interface NativeEngineOptions extends TcpEngineOptions {
  log: Logger;
  /** The relay binary; default native/build/drover-relay. */
  relayPath?: string;
}

export function createNativeEngine(options: NativeEngineOptions): NativeEngine {
  const path = relayBinary(options.relayPath);
  if (path === null) throw new DroverError('DROVER_ENGINE_UNAVAILABLE', 'the native relay is not built (make -C native); use engine uv');
  return new NativeEngine(path, options);
}

const ZERO = { accepted: 0, inbound: 0, outbound: 0, bufferedBytes: 0, relayErrors: 0, relayedBytes: 0, lost: 0 };

export class NativeEngine implements TcpEngine {
  readonly name = 'native' as const;
  readonly inner: TcpEngine;
  readonly relay: RelayProcess;
  private readonly listeners = new Map<number, NativeListener>();
  private nextId = 1;
  private seq = 0;
  private readonly waiting = new Map<number, () => void>();
  private readonly listening = new Map<number, (errno: number) => void>();
  private relayCounts = { ...ZERO };
  private stopped = false;
  /** Counts of relays that exited, so the totals never go back. */
  private gone = { ...ZERO };

  constructor(path: string, options: NativeEngineOptions) {
    this.inner = createUvEngine(options);
    const args = { threads: options.threads ?? 1, bufferBytes: options.bufferBytes ?? 16384, connectTimeoutMs: options.connectTimeoutMs ?? 2000, backlog: options.backlog ?? 4096 };
    this.relay = new RelayProcess(path, args, { line: (w, h) => this.onLine(w, h), restored: () => this.restore(), exited: () => this.relayExited() }, options.log.child({ subsystem: 'relay' }));
    this.relay.start();
  }

  async listen(host: string, port: number, onInbound: (conn: Inbound) => void, counted?: ListenerCounted): Promise<TcpListener> {
    const bound = bindSocket(this.inner, host, port);
    let id = this.nextId;
    while (this.listeners.has(id)) id = (id % 65535) + 1;
    this.nextId = (id % 65535) + 1;
    const listener = new NativeListener(this, id, bound.handle, host, bound.port, onInbound, counted);
    this.listeners.set(id, listener);
    const errno = await this.sendListen(listener);
    if (errno !== 0) {
      this.listeners.delete(id);
      bound.handle.close(noop);
      throw listenFailed(host, bound.port, -errno);
    }
    return listener;
  }

  counts(): TcpCounts {
    const inner = this.inner.counts();
    const r = this.relayCounts;
    const g = this.gone;
    return {
      listeners: this.listeners.size,
      inbound: inner.inbound + r.inbound,
      outbound: inner.outbound + r.outbound,
      bufferedBytes: inner.bufferedBytes + r.bufferedBytes,
      accepted: inner.accepted + g.accepted + r.accepted,
      relayErrors: inner.relayErrors + g.relayErrors + r.relayErrors,
      relayedBytes: inner.relayedBytes + g.relayedBytes + r.relayedBytes,
      lost: inner.lost + g.lost + r.lost,
    };
  }

  async destroyAll(): Promise<void> {
    this.stopped = true;
    await this.relay.stop();
    for (const resolve of this.waiting.values()) resolve();
    this.waiting.clear();
    this.relayExited();
    for (const l of this.listeners.values()) l.handle.close(noop);
    this.listeners.clear();
    await this.inner.destroyAll();
  }

  /** Sends a line that the relay acknowledges; resolves at its ack (or the ack of a restarted relay's copy). */
  request(line: (seq: number) => string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const seq = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(seq, resolve);
      // No relay right now: the restart's `restore` sends the state, and resolves this.
      this.relay.send(line(seq));
    });
  }

  forget(listener: NativeListener): void {
    if (this.listeners.get(listener.id) === listener) this.listeners.delete(listener.id);
  }

  private sendListen(listener: NativeListener): Promise<number> {
    return new Promise((resolve) => {
      this.listening.set(listener.id, resolve);
      if (!this.relay.send(`listen ${listener.id}`, listener.handle)) resolve(0); // the restart listens
    });
  }

  private onLine(words: string[], handle: UvHandle | undefined): boolean {
    const [verb, ...args] = words;
    const n = args.map(Number);
    if (!n.every((x) => Number.isSafeInteger(x) && x >= -1)) return false;
    switch (verb) {
      case 'ready':
        return args.length === 0;
      case 'ack': {
        if (n.length !== 1) return false;
        // Acks come in order: every request up to this one is in effect.
        for (const [seq, resolve] of this.waiting) if (seq <= n[0]!) (this.waiting.delete(seq), resolve());
        return true;
      }
      case 'listened': {
        if (n.length !== 2) return false;
        this.listening.get(n[0]!)?.(n[1]!);
        this.listening.delete(n[0]!);
        return true;
      }
      case 'conn': {
        // conn PORT WAITED_MS [FORWARDED]: 1 when every instance refused it (counted already)
        if (handle === undefined || n.length < 2 || n.length > 3) return false;
        const listener = this.listeners.get(n[0]!);
        if (listener === undefined || listener.closed) {
          handle.close(noop);
          return true;
        }
        listener.onInbound(adoptConnection(this.inner, handle, n[1]!, n[2] === 1));
        return true;
      }
      case 'stats':
        return this.onStats(n);
      default:
        return false;
    }
  }

  private onStats(n: number[]): boolean {
    if (n.length < 8 || (n.length - 8) % 4 !== 0) return false;
    const [accepted, inbound, outbound, bufferedBytes, relayErrors, relayedBytes, lost] = n as [number, number, number, number, number, number, number];
    this.relayCounts = { accepted, inbound, outbound, bufferedBytes, relayErrors, relayedBytes, lost };
    for (let i = 8; i < n.length; i += 4) this.listeners.get(n[i]!)?.counts(n[i + 1]!, n[i + 2]!, n[i + 3]!);
    return true;
  }

  /**
   * A new relay: every open port again, its route before its socket (so the relay forwards
   * from its first accept rather than handing the queued connections back); what waited for
   * the old relay resolves with the new one's ack.
   */
  private restore(): void {
    const seq = ++this.seq;
    for (const l of this.listeners.values()) {
      if (l.closed) continue;
      if (l.spec !== null) this.relay.send(routeLine(l.id, seq, l.spec));
      this.relay.send(`listen ${l.id}`, l.handle);
      l.resetCounts();
    }
    this.relay.send(`close 0 ${seq}`); // an ack at `seq` once all of the above is in effect
    this.waiting.set(seq, noop);
  }

  private relayExited(): void {
    const r = this.relayCounts;
    this.gone = { ...ZERO, accepted: this.gone.accepted + r.accepted, relayErrors: this.gone.relayErrors + r.relayErrors, relayedBytes: this.gone.relayedBytes + r.relayedBytes, lost: this.gone.lost + r.lost };
    this.relayCounts = { ...ZERO };
    for (const [id, resolve] of this.listening) (this.listening.delete(id), resolve(0));
  }
}

class NativeListener implements TcpListener {
  closed = false;
  spec: ListenerRoute | null = null;
  private closing: Promise<void> | null = null;
  private seen = [0, 0, 0];

  constructor(
    readonly engine: NativeEngine,
    readonly id: number,
    readonly handle: UvHandle,
    readonly host: string,
    readonly port: number,
    readonly onInbound: (conn: Inbound) => void,
    private readonly counted?: ListenerCounted,
  ) {}

  route(spec: ListenerRoute): Promise<void> {
    // A target the relay cannot dial itself (not an IPv4 address) is served by the uv engine.
    const usable = spec.targets !== null && spec.targets.length > 0 && spec.targets.length <= 64 && spec.targets.every((t) => isIPv4(t.host));
    const keep = spec.keep === null ? null : spec.keep.filter((t) => isIPv4(t.host)).slice(0, 64);
    this.spec = { targets: usable ? spec.targets : null, replay: spec.replay, keep };
    return this.engine.request((seq) => routeLine(this.id, seq, this.spec!));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await this.engine.request((seq) => `close ${this.id} ${seq}`);
      this.engine.forget(this);
      this.handle.close(noop);
    })();
    return this.closing;
  }

  /** The relay's totals for this port (since it started): the differences are new events. */
  counts(forwarded: number, refused: number, replayed: number): void {
    const now = [forwarded, refused, replayed];
    const events = ['forwarded', 'refused', 'replayed'] as const;
    for (let i = 0; i < 3; i++) if (now[i]! > this.seen[i]!) this.counted?.(events[i]!, now[i]! - this.seen[i]!);
    this.seen = now;
  }

  resetCounts(): void {
    this.seen = [0, 0, 0];
  }
}

function routeLine(id: number, seq: number, spec: ListenerRoute): string {
  const list = (ts: Endpoint[]) => [ts.length, ...ts.map((t) => `${t.host}:${t.port}`)].join(' ');
  const forward = spec.targets !== null;
  return `route ${id} ${seq} ${forward ? 1 : 0} ${spec.replay ? 1 : 0} ${forward ? list(spec.targets!) : '0'} ${spec.keep === null ? '-1' : list(spec.keep)}`;
}

/** A dotted IPv4 address (the relay dials nothing else). */
function isIPv4(host: string): boolean {
  const parts = host.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

export function isNativeEngine(engine: TcpEngine): engine is NativeEngine {
  return engine instanceof NativeEngine;
}

export { errName };

/**
 * One external port of one node: its listener, its current route, and the connections it
 * holds. The hold protocol lives here (DESIGN.md): while the route holds (or has no target),
 * accepted connections wait paused, FIFO, until the route forwards again or the hold deadline
 * closes them; a backend connect that fails is retried every `retryIntervalMs` until that
 * same deadline, so a backend restarting is absorbed too.
 */
import { backoffDelay, type Backoff } from '#common/backoff.ts';
import type { Route } from '#common/channel.ts';
import type { Clock } from '#common/clock.ts';
import type { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import { isForwarding } from './route-plan.ts';
import type { Endpoint, Inbound, ListenerRoute, TcpEngine, TcpListener } from './tcp.ts';
import { NO_PROXY_METRICS, type ProxyMetrics } from './metrics.ts';
import { Balancer } from './balance.ts';
import { replayVerdict } from './replay.ts';

export interface ForwardingOptions {
  /** How long a connection may wait (held, or retrying its connect) before it is closed. */
  holdDeadlineMs: number;
  connectTimeoutMs: number;
  retryIntervalMs: number;
  /** Held connections per port past which new ones are closed (each holds a descriptor); for UDP, held datagrams. */
  maxHeld: number;
  /** UDP: a client's session idle this long is closed (udp.ts; default 60 s). */
  udpIdleTimeoutMs?: number;
}

/** A listener that failed to open is tried again 250 ms doubling to 5 s later. */
const LISTEN_RETRY: Backoff = { initialMs: 250, capMs: 5_000 };

export interface PortStatus {
  port: number;
  application: string;
  listening: boolean;
  forwarding: boolean;
  target: string | null;
  held: number;
  retrying: number;
  released: number;
  deadlineClosed: number;
}

export class PortForwarder {
  private listener: TcpListener | null = null;
  /** FIFO of held connections; `heldHead` skips released ones without shifting the array. */
  private held: Inbound[] = [];
  private heldHead = 0;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private readonly retrying = new Map<Inbound, NodeJS.Timeout>();
  /** Connections sent to a backend, with that backend (`host:port`): cut when the route leaves it. */
  private readonly relaying = new Map<Inbound, string>();
  private tracked = 0;
  private listenTimer: NodeJS.Timeout | null = null;
  private listenFailures = 0;
  private removed = false;
  private lastWarnAt = -Infinity;
  private released = 0;
  private deadlineClosed = 0;
  /** Several instances (docs/DESIGN.md §30): which target the next connection goes to. */
  private readonly balancer = new Balancer();
  /** Connections replayed on another instance, and how often (docs/DESIGN.md §30). */
  private readonly replays = new WeakMap<Inbound, number>();

  constructor(
    private route: Route,
    private readonly engine: TcpEngine,
    private readonly host: string,
    private readonly opts: ForwardingOptions,
    private readonly clock: Pick<Clock, 'monotonic'>,
    private readonly log: Logger,
    private readonly metrics: ProxyMetrics = NO_PROXY_METRICS,
  ) {}

  get port(): number {
    return this.route.external_port;
  }

  /** Starts listening; on failure keeps retrying in the background (capped backoff). */
  async open(): Promise<void> {
    if (this.removed || this.listener !== null) return;
    try {
      this.listener = await this.engine.listen(this.host, this.port, this.onInbound, this.onCounted);
      if (this.removed) await this.listener.close();
      else {
        await this.listener.route?.(listenerRoute(this.route));
        if (this.listenFailures > 0) this.log.info({ port: this.port }, 'listener opened after retries');
      }
      this.listenFailures = 0;
    } catch (err) {
      this.listenFailures++;
      const delay = backoffDelay(LISTEN_RETRY, this.listenFailures);
      this.log.warn({ err, port: this.port, host: this.host, retryInMs: delay }, 'listener failed to open');
      this.listenTimer = setTimeout(() => {
        this.listenTimer = null;
        void this.open();
      }, delay);
    }
  }

  /**
   * Takes a new route for this port; when it forwards, held connections go there, oldest first.
   * Connections relaying to a target the route no longer leads to are closed (docs/DESIGN.md §18):
   * after a failover the old node may still run the application (its agent paused or cut off),
   * and a client that keeps its connection must not go on writing there. A planned move stops the
   * source before its route changes, so its relays have ended by then.
   */
  setRoute(route: Route): Promise<void> {
    this.route = route;
    this.cutStale(route);
    this.release(route);
    // An engine that forwards by itself (native) takes the route after the held connections
    // went (oldest first); the table is applied once it has it.
    return this.listener?.route?.(listenerRoute(route)) ?? Promise.resolve();
  }

  private release(route: Route): void {
    if (!isForwarding(route) || this.heldCount() === 0) return;
    const queue = this.held;
    const from = this.heldHead;
    this.held = [];
    this.heldHead = 0;
    this.clearDeadline();
    const now = this.clock.monotonic();
    let oldestMs = 0;
    let count = 0;
    for (let i = from; i < queue.length; i++) {
      const conn = queue[i]!;
      if (conn.closed) continue;
      oldestMs = Math.max(oldestMs, now - conn.since);
      count++;
      this.metrics.heldFor(route.application, (now - conn.since) / 1000);
      this.dispatch(conn);
    }
    this.released += count;
    this.log.info({ ...corrOf(route), port: this.port, application: route.application, released: count, oldestHeldMs: Math.round(oldestMs) }, 'held connections released');
  }

  /** Stops listening and closes what waits here; relays in progress go on until they end. */
  async remove(): Promise<void> {
    this.removed = true;
    if (this.listenTimer !== null) clearTimeout(this.listenTimer);
    this.clearDeadline();
    let closed = 0;
    for (let i = this.heldHead; i < this.held.length; i++) {
      const conn = this.held[i]!;
      if (!conn.closed) closed++;
      conn.destroy();
    }
    this.held = [];
    this.heldHead = 0;
    for (const [conn, timer] of this.retrying) {
      clearTimeout(timer);
      conn.destroy();
      closed++;
    }
    this.retrying.clear();
    if (closed > 0) this.log.warn({ port: this.port, application: this.route.application, closed }, 'waiting connections closed, route removed');
    await this.listener?.close();
    this.listener = null;
  }

  status(): PortStatus {
    const r = this.route;
    return {
      port: this.port,
      application: r.application,
      listening: this.listener !== null,
      forwarding: isForwarding(r),
      target: r.target ? `${r.target.host}:${r.target.port}` : null,
      held: this.heldCount(),
      retrying: this.retrying.size,
      released: this.released,
      deadlineClosed: this.deadlineClosed,
    };
  }

  private heldCount(): number {
    let n = 0;
    for (let i = this.heldHead; i < this.held.length; i++) if (!this.held[i]!.closed) n++;
    return n;
  }

  // Bound once: the engine calls it for every accepted connection.
  private readonly onInbound = (conn: Inbound): void => {
    conn.since = this.clock.monotonic() - (conn.waitedMs ?? 0);
    // One the native relay forwarded and could not connect is counted already: a retry here.
    if (conn.forwarded === true) return this.dispatch(conn, true);
    this.metrics.connection(this.route.application, 'accepted');
    this.dispatch(conn);
  };

  /** What an engine that forwards by itself did, in batches (the native relay's counts). */
  private readonly onCounted = (event: 'forwarded' | 'refused' | 'replayed', n: number): void => {
    const application = this.route.application;
    if (event === 'forwarded') this.metrics.connection(application, 'accepted', n);
    this.metrics.connection(application, event, n);
  };

  /** Forwards or holds; `retry`: a connect that failed is tried again (counted once, at first). */
  private dispatch(conn: Inbound, retry = false): void {
    const route = this.route;
    if (isForwarding(route)) {
      if (!retry) this.metrics.connection(route.application, 'forwarded');
      if (route.targets === undefined) {
        this.track(conn, targetKey(route.target));
        return conn.forward(route.target, this.opts.connectTimeoutMs, this.onConnectFailed);
      }
      // Several instances: the next one, not the one this connection just failed on, and the
      // client's bytes kept so that an instance going before it answers can be replaced.
      const target = this.balancer.pick(route.targets, this.clock.monotonic(), retry ? this.relaying.get(conn) : undefined) ?? route.target;
      this.track(conn, targetKey(target));
      conn.forward(target, this.opts.connectTimeoutMs, this.onConnectFailed, this.onLost);
    } else this.hold(conn);
  }

  /** Remembers where `conn` was sent; closed ones are dropped now and then (they stay few). */
  private track(conn: Inbound, target: string): void {
    this.relaying.set(conn, target);
    if (++this.tracked % 256 === 0) for (const c of this.relaying.keys()) if (c.closed) this.relaying.delete(c);
  }

  private cutStale(route: Route): void {
    // Several instances: a target that left the route is draining (its relays end on their
    // own before it is stopped) or its node is gone; the others go on (docs/DESIGN.md §30).
    if (route.targets !== undefined) return;
    const now = route.target === null ? null : targetKey(route.target);
    let cut = 0;
    for (const [conn, target] of this.relaying) {
      if (conn.closed) this.relaying.delete(conn);
      else if (this.retrying.has(conn)) continue; // not connected: its next try takes the new route
      else if (target !== now) {
        this.relaying.delete(conn);
        conn.destroy();
        cut++;
      }
    }
    if (cut > 0) this.log.warn({ port: this.port, application: route.application, closed: cut, target: now }, 'connections to a former target closed');
  }

  private hold(conn: Inbound): void {
    if (this.held.length - this.heldHead >= this.opts.maxHeld) {
      this.warnRarely({ port: this.port, maxHeld: this.opts.maxHeld }, 'hold queue full, connection closed');
      this.metrics.connection(this.route.application, 'refused');
      conn.destroy();
      return;
    }
    this.metrics.connection(this.route.application, 'held');
    this.held.push(conn);
    this.armDeadline();
  }

  private readonly onConnectFailed = (conn: Inbound, err: DroverError): void => {
    if (this.removed || conn.closed) return conn.destroy();
    const waited = this.clock.monotonic() - conn.since;
    if (!err.retryable || waited + this.opts.retryIntervalMs > this.opts.holdDeadlineMs) {
      this.log.warn({ err, port: this.port, application: this.route.application, waitedMs: Math.round(waited) }, 'connection closed, backend unreachable');
      this.metrics.connection(this.route.application, 'refused');
      conn.destroy();
      return;
    }
    const targets = this.route.targets;
    if (targets !== undefined && targets.length > 1) {
      // Another instance may answer: mark this one and try the next at once.
      const now = this.clock.monotonic();
      const failed = this.relaying.get(conn);
      if (failed !== undefined) this.balancer.failed(failed, now);
      if (failed !== undefined && this.balancer.hasAlternative(targets, failed, now)) {
        this.warnRarely({ err, port: this.port, application: this.route.application, target: failed }, 'instance unreachable, trying another');
        this.dispatch(conn, true);
        return;
      }
    }
    this.warnRarely({ err, port: this.port, application: this.route.application }, 'backend unreachable, retrying');
    const timer = setTimeout(() => {
      this.retrying.delete(conn);
      if (this.removed || conn.closed) return conn.destroy();
      this.dispatch(conn, true);
    }, this.opts.retryIntervalMs);
    this.retrying.set(conn, timer);
  };

  /**
   * The instance closed or reset the connection before answering (docs/DESIGN.md §30): replay
   * what the client sent on another instance when that is safe (`replay.ts`), else close it —
   * the client sees its connection end, as it would without the proxy.
   */
  private readonly onLost = (conn: Inbound, sent: Uint8Array | null, err: DroverError): void => {
    if (this.removed || conn.closed) return conn.destroy();
    const replays = this.replays.get(conn) ?? 0;
    const verdict = replayVerdict(sent, replays);
    const application = this.route.application;
    const target = this.relaying.get(conn);
    // A reset or error says the instance is going; a clean close alone may be its own choice.
    if (target !== undefined && (err.detail as { code?: string } | undefined)?.code !== 'EOF') this.balancer.failed(target, this.clock.monotonic());
    if (verdict !== 'replay' || this.route.targets === undefined) {
      this.warnRarely({ err, port: this.port, application, target, verdict, sentBytes: sent?.length }, 'instance closed before answering, connection not replayed');
      this.metrics.connection(application, 'refused');
      return conn.destroy();
    }
    this.replays.set(conn, replays + 1);
    this.metrics.connection(application, 'replayed');
    this.warnRarely({ err, port: this.port, application, target, sentBytes: sent?.length }, 'instance closed before answering, request replayed on another');
    this.dispatch(conn, true);
  };

  private armDeadline(): void {
    if (this.deadlineTimer !== null) return;
    const oldest = this.held[this.heldHead];
    if (oldest === undefined) return;
    const wait = Math.max(0, oldest.since + this.opts.holdDeadlineMs - this.clock.monotonic());
    this.deadlineTimer = setTimeout(() => this.expireHeld(), wait);
  }

  private clearDeadline(): void {
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
  }

  private expireHeld(): void {
    this.deadlineTimer = null;
    const now = this.clock.monotonic();
    let closed = 0;
    while (this.heldHead < this.held.length) {
      const conn = this.held[this.heldHead]!;
      if (!conn.closed && now - conn.since < this.opts.holdDeadlineMs) break;
      if (!conn.closed) {
        closed++;
        this.metrics.heldFor(this.route.application, (now - conn.since) / 1000);
        this.metrics.connection(this.route.application, 'refused');
      }
      conn.destroy();
      this.heldHead++;
    }
    if (this.heldHead === this.held.length) {
      this.held = [];
      this.heldHead = 0;
    }
    if (closed > 0) {
      this.deadlineClosed += closed;
      this.log.warn(
        { port: this.port, application: this.route.application, closed, holdDeadlineMs: this.opts.holdDeadlineMs },
        'held connections closed at the hold deadline',
      );
    }
    this.armDeadline();
  }

  private warnRarely(fields: Record<string, unknown>, message: string): void {
    const now = this.clock.monotonic();
    if (now - this.lastWarnAt < 1000) return;
    this.lastWarnAt = now;
    this.log.warn(fields, message);
  }
}

/** The migration a route's hold belongs to, as the records' correlation id (docs/DESIGN.md §25). */
export function corrOf(route: Route): { corr?: string } {
  return route.migration === undefined ? {} : { corr: route.migration };
}

/**
 * The route as an engine that forwards by itself takes it: where new connections go (null:
 * to `onInbound`, to be held here), whether a first request may be replayed (several
 * instances), and which targets keep their relays (one target: cutStale; several: all).
 */
export function listenerRoute(route: Route): ListenerRoute {
  const single = (t: Endpoint | null): Endpoint[] => (t === null ? [] : [{ host: t.host, port: t.port }]);
  const keep = route.targets === undefined ? single(route.target) : null;
  if (!isForwarding(route)) return { targets: null, replay: false, keep };
  const targets = route.targets === undefined ? single(route.target) : route.targets.map((t) => ({ host: t.host, port: t.port }));
  return { targets, replay: route.targets !== undefined, keep };
}

function targetKey(target: { host: string; port: number }): string {
  return `${target.host}:${target.port}`;
}

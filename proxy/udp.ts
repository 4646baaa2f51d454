/**
 * One UDP port of one node (docs/DESIGN.md §21), and the proxy's only use of node:dgram.
 *
 * UDP has no connection, so the proxy keeps a **session** per client address: the first
 * datagram from `ip:port` opens a socket towards the route's target, datagrams go out through
 * it, and what the target answers on it goes back to that client from the listening address.
 * A session idle for `idleTimeoutMs` (no datagram either way) is closed. While the route
 * holds (or has no target) datagrams wait in arrival order, at most `maxHeld` per port, for
 * at most `holdDeadlineMs`; when it forwards again they go to the new target, oldest first.
 * A new target closes the sessions towards the old one: the next datagram opens a new one.
 * Datagrams are never reordered by the proxy, only (as UDP may) lost: past the bound, at the
 * deadline, or towards a target that is not there.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { Route } from '#common/channel.ts';
import type { Clock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import { backoffDelay, type Backoff } from '#common/backoff.ts';
import type { ForwardingOptions, PortStatus } from './port-forwarder.ts';
import { isForwarding } from './route-plan.ts';

/** A UDP session idle this long is closed, unless the options say otherwise. */
export const DEFAULT_UDP_IDLE_MS = 60_000;
const LISTEN_RETRY: Backoff = { initialMs: 250, capMs: 5_000 };

interface Session {
  socket: Socket;
  target: { host: string; port: number };
  lastActive: number;
}

interface Waiting {
  msg: Buffer;
  from: RemoteInfo;
  since: number;
}

export class UdpForwarder {
  private server: Socket | null = null;
  private readonly sessions = new Map<string, Session>();
  private waiting: Waiting[] = [];
  private sweepTimer: NodeJS.Timeout | null = null;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private removed = false;
  private released = 0;
  private deadlineClosed = 0;
  private listenFailures = 0;
  private listenTimer: NodeJS.Timeout | null = null;

  constructor(
    private route: Route,
    private readonly host: string,
    private readonly opts: ForwardingOptions,
    private readonly clock: Pick<Clock, 'monotonic'>,
    private readonly log: Logger,
  ) {}

  get port(): number {
    return this.route.external_port;
  }

  /** Binds the listening socket; on failure keeps retrying in the background (capped backoff), like a TCP port. */
  async open(): Promise<void> {
    if (this.removed || this.server !== null) return;
    const server = createSocket({ type: 'udp4' });
    server.on('message', (msg, from) => this.onClient(msg, from));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.bind(this.port, this.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      server.close();
      this.listenFailures++;
      const delay = backoffDelay(LISTEN_RETRY, this.listenFailures);
      this.log.warn({ err, port: this.port, host: this.host, protocol: 'udp', retryInMs: delay }, 'listener failed to open');
      this.listenTimer = setTimeout(() => {
        this.listenTimer = null;
        void this.open();
      }, delay);
      return;
    }
    server.on('error', (err) => this.log.warn({ err, port: this.port }, 'udp listener error'));
    if (this.removed) return void server.close();
    this.server = server;
    this.listenFailures = 0;
    const every = Math.max(50, Math.floor(this.idleMs / 2));
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  /** Takes a new route; a new target ends the old sessions; forwarding again sends what waited. */
  setRoute(route: Route): void {
    const before = this.route.target;
    this.route = route;
    const target = route.target;
    if (before !== null && (target === null || target.host !== before.host || target.port !== before.port)) this.closeSessions();
    if (!isForwarding(route) || this.waiting.length === 0) return;
    const queue = this.waiting;
    this.waiting = [];
    this.clearDeadline();
    for (const w of queue) this.send(w.msg, w.from);
    this.released += queue.length;
    this.log.info({ port: this.port, application: route.application, released: queue.length, protocol: 'udp' }, 'held datagrams released');
  }

  /** Stops listening; drops what waits and closes every session. */
  async remove(): Promise<void> {
    this.removed = true;
    if (this.listenTimer !== null) clearTimeout(this.listenTimer);
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.clearDeadline();
    this.waiting = [];
    this.closeSessions();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  status(): PortStatus {
    const r = this.route;
    return {
      port: this.port,
      application: r.application,
      listening: this.server !== null,
      forwarding: isForwarding(r),
      target: r.target ? `${r.target.host}:${r.target.port}` : null,
      held: this.waiting.length,
      retrying: 0,
      released: this.released,
      deadlineClosed: this.deadlineClosed,
    };
  }

  private get idleMs(): number {
    return this.opts.udpIdleTimeoutMs ?? DEFAULT_UDP_IDLE_MS;
  }

  /** Sessions open now (tests, the status line). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  private onClient(msg: Buffer, from: RemoteInfo): void {
    if (isForwarding(this.route)) return this.send(msg, from);
    if (this.waiting.length >= this.opts.maxHeld) return; // UDP: dropped, as a full queue would
    this.waiting.push({ msg, from, since: this.clock.monotonic() });
    this.armDeadline();
  }

  private send(msg: Buffer, from: RemoteInfo): void {
    const route = this.route;
    if (!isForwarding(route)) return;
    const key = `${from.address}:${from.port}`;
    let session = this.sessions.get(key);
    if (session === undefined) {
      const socket = createSocket({ type: 'udp4' });
      const s: Session = { socket, target: { host: route.target.host, port: route.target.port }, lastActive: this.clock.monotonic() };
      socket.on('message', (reply, rinfo) => {
        // Only the target's answers go back: the session's socket is nobody else's business.
        if (rinfo.address !== s.target.host || rinfo.port !== s.target.port) return;
        s.lastActive = this.clock.monotonic();
        this.server?.send(reply, from.port, from.address);
      });
      socket.on('error', (err) => this.log.debug({ err, port: this.port, client: key }, 'udp session error'));
      this.sessions.set(key, s);
      session = s;
    }
    session.lastActive = this.clock.monotonic();
    session.socket.send(msg, session.target.port, session.target.host);
  }

  private sweep(): void {
    const now = this.clock.monotonic();
    for (const [key, s] of this.sessions) {
      if (now - s.lastActive < this.idleMs) continue;
      s.socket.close();
      this.sessions.delete(key);
    }
  }

  private closeSessions(): void {
    for (const s of this.sessions.values()) s.socket.close();
    this.sessions.clear();
  }

  private armDeadline(): void {
    if (this.deadlineTimer !== null) return;
    const oldest = this.waiting[0];
    if (oldest === undefined) return;
    const wait = Math.max(0, oldest.since + this.opts.holdDeadlineMs - this.clock.monotonic());
    this.deadlineTimer = setTimeout(() => this.expire(), wait);
  }

  private clearDeadline(): void {
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
  }

  private expire(): void {
    this.deadlineTimer = null;
    const now = this.clock.monotonic();
    const before = this.waiting.length;
    this.waiting = this.waiting.filter((w) => now - w.since < this.opts.holdDeadlineMs);
    const dropped = before - this.waiting.length;
    if (dropped > 0) {
      this.deadlineClosed += dropped;
      this.log.warn({ port: this.port, application: this.route.application, dropped, protocol: 'udp' }, 'held datagrams dropped at the hold deadline');
    }
    this.armDeadline();
  }
}

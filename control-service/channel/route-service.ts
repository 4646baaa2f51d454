/**
 * Serves the route table to the proxies: a long-polled, versioned body that changes only
 * when a route changes, and the proxies' acknowledgements. An agent asks
 * `GET /v1/drover/routes/acks?version=N` before it stops a source in a cutover: every live
 * proxy must have applied version N (with the hold) first.
 */
import { nextVersion, Waiters } from './waiters.ts';

interface Proxy {
  acked: number;
  lastSeen: number;
  polling: number;
}

export interface AckStatus {
  version: number;
  /** True when every live proxy acked `version` or newer. */
  acked: boolean;
  proxies: { node_uuid: string; acked_version: number; live: boolean }[];
  /** Live proxies that have not acked `version` yet. */
  waiting_for: string[];
}

export class RouteService {
  private version = 0;
  private text = '';
  private body = '';
  private dirty = true;
  private readonly waiters = new Waiters();
  private readonly proxies = new Map<string, Proxy>();

  constructor(
    /** The routes' JSON text (an array). */
    private readonly compute: () => string,
    private readonly clock: () => number,
    /** A proxy silent for longer is not waited for. */
    private readonly liveMs: number,
  ) {}

  get(): { version: number; body: string } {
    this.refresh();
    return { version: this.version, body: this.body };
  }

  /** Something routes depend on changed: recompute now if a proxy waits, else on the next read. */
  changed(): void {
    this.dirty = true;
    if (this.waiters.size > 0) this.refresh();
  }

  async wait(after: number, timeoutMs: number, signal?: AbortSignal, node?: string): Promise<void> {
    this.refresh();
    if (this.version !== after) return;
    const proxy = node === undefined ? undefined : this.proxy(node);
    if (proxy) proxy.polling++;
    try {
      await this.waiters.wait(timeoutMs, signal);
    } finally {
      if (proxy) {
        proxy.polling--;
        proxy.lastSeen = this.clock();
      }
    }
  }

  /** Called after every acknowledgement (the failover's route hold waits on them). */
  onAck: (() => void) | null = null;

  ack(node: string, version: number): void {
    const proxy = this.proxy(node);
    proxy.acked = Math.max(proxy.acked, version);
    this.onAck?.();
  }

  acks(version: number): AckStatus {
    const now = this.clock();
    const proxies = [...this.proxies].map(([uuid, p]) => ({ node_uuid: uuid, acked_version: p.acked, live: p.polling > 0 || now - p.lastSeen <= this.liveMs }));
    const waiting = proxies.filter((p) => p.live && p.acked_version < version).map((p) => p.node_uuid);
    return { version, acked: waiting.length === 0, proxies, waiting_for: waiting };
  }

  wakeAll(): void {
    this.waiters.wake();
  }

  private proxy(node: string): Proxy {
    let proxy = this.proxies.get(node);
    if (!proxy) {
      proxy = { acked: 0, lastSeen: this.clock(), polling: 0 };
      this.proxies.set(node, proxy);
    }
    proxy.lastSeen = this.clock();
    return proxy;
  }

  private refresh(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const text = this.compute();
    if (text === this.text) return;
    this.text = text;
    this.version = nextVersion(this.version);
    this.body = `{"version":${this.version},"routes":${text}}`;
    this.waiters.wake();
  }
}

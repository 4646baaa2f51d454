/**
 * The routing proxy's core (the `app.ts` of this program): applies route tables to ports and,
 * in kernel mode, to DNAT rules. It touches no process globals (argv, env, signals, exit);
 * `main.ts` wires it. Tests build it on a real TCP engine and drive `apply` directly or
 * through `followRoutes`.
 */
import type { Route, RouteTable } from '#common/channel.ts';
import { systemClock, type Clock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import { corrOf, PortForwarder, type ForwardingOptions, type PortStatus } from './port-forwarder.ts';
import { dnatRules, planRoutes, type DnatRule } from './route-plan.ts';
import type { TcpCounts, TcpEngine } from './tcp.ts';
import { UdpForwarder } from './udp.ts';
import type { ServiceSubnet } from '#common/service-subnet.ts';
import { NO_PROXY_METRICS, type ProxyMetrics } from './metrics.ts';

/** The kernel fast path: owns one nftables table and replaces its rules atomically. */
export interface NatRules {
  /** Makes the kernel's rules exactly `rules`. Resolves once they are in effect. */
  sync(rules: DnatRule[]): Promise<void>;
  /** Removes every rule (and the table). Idempotent. */
  clear(): Promise<void>;
}

export interface ProxyDeps {
  engine: TcpEngine;
  /** The node's address: published ports listen on `listenHost:external_port` (unless they name a host address). */
  listenHost: string;
  /** Name routes listen in it (docs/DESIGN.md §21); absent: none are served. */
  serviceSubnet?: ServiceSubnet | null;
  /** UDP routes are served (false in a worker: the primary alone binds UDP ports). Default true. */
  udp?: boolean;
  options: ForwardingOptions;
  log: Logger;
  clock?: Clock;
  /** Present in kernel mode. */
  nat?: NatRules;
  /** Where connections and route tables are counted (docs/DESIGN.md §25). */
  metrics?: ProxyMetrics;
}

export interface ProxyStatus {
  version: number | null;
  mode: 'user' | 'kernel';
  engine: string;
  /** Each listener, with where it listens (`tcp 127.0.0.11:80`). */
  ports: (PortStatus & { listen: string })[];
  counts: TcpCounts;
}

export const DEFAULT_FORWARDING: ForwardingOptions = {
  holdDeadlineMs: 30_000,
  connectTimeoutMs: 2_000,
  retryIntervalMs: 100,
  maxHeld: 10_000,
};

/** What listens for one route: a TCP port (with its hold queue) or a UDP port (udp.ts). */
type Forwarder = PortForwarder | UdpForwarder;

export class RoutingProxy {
  private readonly ports = new Map<string, Forwarder>();
  private readonly routes = new Map<string, Route>();
  private applied: number | null = null;
  private readonly clock: Clock;

  constructor(private readonly deps: ProxyDeps) {
    this.clock = deps.clock ?? systemClock;
  }

  /** The version of the last table applied in full; null before the first. */
  get version(): number | null {
    return this.applied;
  }

  /**
   * Applies `table`: holds and new targets take effect for new connections at once, then
   * listeners open and close, then (kernel mode) the DNAT rules are replaced. Resolves when
   * all of that is in place, so the caller may acknowledge the version. Rejects (and keeps the
   * previous version) only when the kernel rules can be neither set nor removed.
   */
  async apply(table: RouteTable): Promise<void> {
    const { deps } = this;
    const began = this.clock.monotonic();
    const udp = deps.udp ?? true;
    const plan = planRoutes(this.routes, { ...table, routes: udp ? table.routes : table.routes.filter((r) => r.protocol !== 'udp') }, { listenHost: deps.listenHost, serviceSubnet: deps.serviceSubnet ?? null });
    for (const { route, reason } of plan.blocked) deps.log.warn({ application: route.application, port: route.external_port, reason }, 'route skipped');
    const routing: Promise<void>[] = [];
    for (const { key, route } of plan.update) {
      const before = this.routes.get(key);
      if (before !== undefined && before.hold !== route.hold) {
        deps.log.info({ ...corrOf(route), application: route.application, port: route.external_port, version: table.version }, route.hold ? 'route hold started' : 'route hold ended');
      }
      this.routes.set(key, route);
      routing.push(this.ports.get(key)!.setRoute(route) ?? Promise.resolve());
    }
    const closing = plan.close.map((key) => {
      const forwarder = this.ports.get(key)!;
      this.ports.delete(key);
      this.routes.delete(key);
      return forwarder.remove();
    });
    const opening = plan.open.map(({ listen, route }) => {
      const forwarder = listen.udp
        ? new UdpForwarder(route, listen.host, deps.options, this.clock, deps.log)
        : new PortForwarder(route, deps.engine, listen.host, deps.options, this.clock, deps.log, deps.metrics);
      this.ports.set(listen.key, forwarder);
      this.routes.set(listen.key, route);
      return forwarder.open();
    });
    await Promise.all([...routing, ...closing, ...opening]);
    if (deps.nat) await this.syncNat(deps.nat);
    this.applied = table.version;
    deps.metrics?.routeTable(table.version, (this.clock.monotonic() - began) / 1000);
    deps.log.info(
      {
        version: table.version,
        routes: this.routes.size,
        opened: plan.open.length,
        closed: plan.close.length,
        holding: [...this.routes.values()].filter((r) => r.hold).map((r) => r.application),
      },
      'route table applied',
    );
  }

  status(): ProxyStatus {
    return {
      version: this.applied,
      mode: this.deps.nat ? 'kernel' : 'user',
      engine: this.deps.engine.name,
      ports: [...this.ports].map(([key, p]) => ({ ...p.status(), listen: key })).sort((a, b) => a.port - b.port || a.listen.localeCompare(b.listen)),
      counts: this.deps.engine.counts(),
    };
  }

  /**
   * Stops: kernel rules go first (so new connections reach no stale DNAT), listeners close,
   * held connections close, relays get `graceMs` to end by themselves, then are closed.
   */
  async stop(graceMs = 5_000): Promise<void> {
    const { deps } = this;
    if (deps.nat) await deps.nat.clear().catch((err: unknown) => deps.log.error({ err }, 'kernel rules not removed'));
    await Promise.all([...this.ports.values()].map((p) => p.remove()));
    this.ports.clear();
    this.routes.clear();
    const deadline = this.clock.monotonic() + graceMs;
    while (deps.engine.counts().inbound > 0 && this.clock.monotonic() < deadline) await this.clock.sleep(50);
    const left = deps.engine.counts().inbound;
    if (left > 0) deps.log.warn({ connections: left }, 'connections closed at stop');
    await deps.engine.destroyAll();
  }

  private async syncNat(nat: NatRules): Promise<void> {
    const rules = dnatRules(this.routes.values());
    try {
      await nat.sync(rules);
    } catch (err) {
      // Without the rules we meant, a hold may not be in effect. With no rules at all every
      // port is served (and held) in user space, which is correct, only slower. If even that
      // fails, the version is not applied and the caller does not acknowledge it.
      this.deps.log.error({ err, rules: rules.length }, 'kernel rules not applied, serving every port in user space');
      await nat.clear();
    }
  }
}

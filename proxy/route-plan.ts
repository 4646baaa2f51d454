/**
 * What a new route table means for one node's proxy, decided in pure code (docs/DESIGN.md §4 "The
 * loop"): which listeners to open, which to close, which routes changed, and which DNAT rules
 * the kernel fast path should hold. No I/O, no clock.
 *
 * A route listens at one place (`listenOf`): a published port on the node's address, or on
 * its `host_ip` only; a name route (docs/DESIGN.md §21) on its name slot's address in this
 * node's service subnet, at the container's own port. TCP and UDP listen apart.
 */
import type { Route, RouteTable } from '#common/channel.ts';
import { serviceAddress, type ServiceSubnet } from '#common/service-subnet.ts';

/** Where this proxy is: what turns a route into an address to listen on. */
export interface ProxyPlace {
  /** The node's address: published ports without a `host_ip` listen here. */
  listenHost: string;
  /** Name routes listen in it; null: this proxy serves no names. */
  serviceSubnet: ServiceSubnet | null;
}

/** One listener: `tcp 127.0.0.11:80`, `udp 10.213.0.5:53`. */
export interface Listen {
  key: string;
  host: string;
  port: number;
  udp: boolean;
}

/** Where `route` listens on this proxy, or why it cannot. */
export function listenOf(route: Route, place: ProxyPlace): Listen | { reason: string } {
  let host = route.host_ip ?? place.listenHost;
  if (route.name_slot !== undefined) {
    if (place.serviceSubnet === null) return { reason: 'this proxy has no service subnet' };
    const address = serviceAddress(place.serviceSubnet, route.name_slot);
    if (address === null) return { reason: `name slot ${route.name_slot} is outside the service subnet ${place.serviceSubnet.cidr}` };
    host = address;
  }
  const udp = route.protocol === 'udp';
  return { key: `${udp ? 'udp' : 'tcp'} ${host}:${route.external_port}`, host, port: route.external_port, udp };
}

export interface RoutePlan {
  /** Listeners not open yet. */
  open: { listen: Listen; route: Route }[];
  /** Listeners whose route is gone from the table: stop listening, close held connections. */
  close: string[];
  /** Listeners that stay, with their (possibly unchanged) new route. */
  update: { key: string; route: Route }[];
  /** Routes the table holds twice for one listener (the first one wins), or that cannot listen here. */
  blocked: { route: Route; reason: string }[];
}

/**
 * Diffs `table` against the listeners the proxy has now (by `Listen.key`). Idempotent:
 * planning the same table twice gives no opens and no closes the second time.
 */
export function planRoutes(current: ReadonlyMap<string, Route>, table: RouteTable, place: ProxyPlace): RoutePlan {
  const plan: RoutePlan = { open: [], close: [], update: [], blocked: [] };
  const seen = new Map<string, Route>();
  for (const route of table.routes) {
    const listen = listenOf(route, place);
    if ('reason' in listen) {
      plan.blocked.push({ route, reason: listen.reason });
      continue;
    }
    const first = seen.get(listen.key);
    if (first !== undefined) {
      plan.blocked.push({ route, reason: `${listen.key} already routes application ${first.application}` });
      continue;
    }
    seen.set(listen.key, route);
    if (current.has(listen.key)) plan.update.push({ key: listen.key, route });
    else plan.open.push({ listen, route });
  }
  for (const key of current.keys()) if (!seen.has(key)) plan.close.push(key);
  return plan;
}

/** Where new connections to a port go now: the route's target, or the user-space hold. */
export function isForwarding(route: Route): route is Route & { target: NonNullable<Route['target']> } {
  return route.target !== null && !route.hold;
}

export interface DnatRule {
  port: number;
  target: { host: string; port: number };
}

/**
 * The kernel fast path's rules: one DNAT per forwarding TCP route on the node's address. A
 * held route, or one without a target, has no rule, so its connections reach the user-space
 * listener that holds them; UDP, host-address, name and several-instance routes stay in user space. Sorted by
 * port, so equal tables give equal rule sets.
 */
export function dnatRules(routes: Iterable<Route>): DnatRule[] {
  const rules: DnatRule[] = [];
  for (const route of routes) {
    // Several instances (route.targets) are balanced in user space (docs/DESIGN.md §30).
    if (route.protocol !== undefined || route.host_ip !== undefined || route.name_slot !== undefined || route.targets !== undefined) continue;
    if (isForwarding(route)) rules.push({ port: route.external_port, target: { host: route.target.host, port: route.target.port } });
  }
  return rules.sort((a, b) => a.port - b.port);
}

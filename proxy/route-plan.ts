/**
 * What a new route table means for one node's proxy, decided in pure code (docs/DESIGN.md §4 "The
 * loop"): which ports to start listening on, which to stop, which routes changed, and which
 * DNAT rules the kernel fast path should hold. No I/O, no clock.
 */
import type { Route, RouteTable } from '#common/channel.ts';

export interface RoutePlan {
  /** Ports with no listener yet. */
  open: Route[];
  /** Ports whose route is gone from the table: stop listening, close held connections. */
  close: number[];
  /** Ports that stay, with their (possibly unchanged) new route. */
  update: Route[];
  /** Routes the table holds twice for one port; the first one wins. */
  blocked: { route: Route; reason: string }[];
}

/**
 * Diffs `table` against the ports the proxy has now. Idempotent: planning the same table
 * twice gives no opens and no closes the second time.
 */
export function planRoutes(current: ReadonlyMap<number, Route>, table: RouteTable): RoutePlan {
  const plan: RoutePlan = { open: [], close: [], update: [], blocked: [] };
  const seen = new Map<number, Route>();
  for (const route of table.routes) {
    const first = seen.get(route.external_port);
    if (first !== undefined) {
      plan.blocked.push({ route, reason: `port ${route.external_port} already routes application ${first.application}` });
      continue;
    }
    seen.set(route.external_port, route);
    if (current.has(route.external_port)) plan.update.push(route);
    else plan.open.push(route);
  }
  for (const port of current.keys()) if (!seen.has(port)) plan.close.push(port);
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
 * The kernel fast path's rules: one DNAT per forwarding route. A held route, or one without a
 * target, has no rule, so its connections reach the user-space listener that holds them.
 * Sorted by port, so equal tables give equal rule sets.
 */
export function dnatRules(routes: Iterable<Route>): DnatRule[] {
  const rules: DnatRule[] = [];
  for (const route of routes) {
    if (isForwarding(route)) rules.push({ port: route.external_port, target: { host: route.target.host, port: route.target.port } });
  }
  return rules.sort((a, b) => a.port - b.port);
}

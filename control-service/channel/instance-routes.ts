/**
 * Routes of an application with several instances (docs/DESIGN.md §30). Pure.
 *
 * Each port (published and by name) leads to every instance that is ready: not draining, its
 * container seen running on its node (healthy, when there is a health check), publishing the
 * port. A draining instance is out at once, so proxies stop sending it new connections before
 * it is stopped. Such a route never holds: while one instance serves, the others may come and
 * go; with none ready its target is null, and the proxies hold new connections (up to their
 * deadline) as for an application not started yet.
 */
import type { Route } from '#common/channel.ts';
import type { Application, ObservedContainer } from '#common/model.ts';
import { instanceName } from '../desired/instances.ts';
import { routesOf, type ContainerLookup, type LearnedPorts } from './route-table.ts';

export function instanceRoutes(app: Application, container: ContainerLookup, learned?: LearnedPorts): Route[] {
  const ready: { node: string; seen: ObservedContainer }[] = [];
  for (const i of app.placed ?? []) {
    if (i.draining_since !== undefined) continue;
    const seen = container(i.node_uuid, instanceName(app.name, i.id));
    if (seen === undefined || !seen.running || (app.health_check !== undefined && seen.health !== 'healthy')) continue;
    ready.push({ node: i.node_uuid, seen });
  }
  const spread = (internal: number, protocol: 'udp' | undefined): NonNullable<Route['target']>[] =>
    ready.flatMap(({ node, seen }) => {
      const p = seen.published.find((q) => q.internal === internal && q.protocol === protocol);
      return p === undefined ? [] : [{ host: p.host, port: p.host_port, node_uuid: node }];
    });
  // Ports its image EXPOSEs are learned from any ready instance (route-table.ts LearnedPorts).
  const known = learned !== undefined && app.name_slot !== undefined ? learned.note(app, ready[0]?.seen) : [];
  return routesOf(app, undefined, undefined, undefined, known, spread);
}

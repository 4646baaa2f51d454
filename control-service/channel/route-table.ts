/**
 * The route table the proxies apply (common/channel.ts Route): for every external port of
 * every application, where it leads now. Pure.
 *
 * - target: the node the application is placed on (desired `node_uuid`) and the host port
 *   that node's agent reported publishing for the internal port; null while unknown.
 * - hold: true while a migration of the application is in cutover, and in handoff until the
 *   application runs on the target (healthy, when it has a health check). Proxies accept and
 *   hold new connections meanwhile, so a move loses none.
 * - generation: the fencing generation of the application's newest migration, 0 if none.
 */
import type { Route } from '#common/channel.ts';
import type { Desired, ObservedContainer } from '#common/model.ts';
import { indexOf } from '../desired/desired-index.ts';

/** The container named `name` as node `node` last reported it. */
export type ContainerLookup = (node: string, name: string) => ObservedContainer | undefined;

export function computeRoutes(desired: Desired, container: ContainerLookup): Route[] {
  const index = indexOf(desired);
  const routes: Route[] = [];
  for (const app of desired.applications) {
    if (app.ports.length === 0) continue;
    const node = app.node_uuid;
    const seen = node === undefined ? undefined : container(node, app.name);
    const ready = seen !== undefined && seen.running && (app.health_check === undefined || seen.health === 'healthy');
    const active = index.activeMigrations.byApplication.get(app.name);
    const hold = active?.phase === 'cutover' || (active?.phase === 'handoff' && !ready);
    const generation = index.latestMigrationByApplication.get(app.name)?.generation ?? 0;
    for (const port of app.ports) {
      const published = seen?.published.find((p) => p.internal === port.internal);
      routes.push({
        application: app.name,
        external_port: port.external,
        target: node !== undefined && published !== undefined ? { host: published.host, port: published.host_port, node_uuid: node } : null,
        hold,
        generation,
      });
    }
  }
  return routes;
}

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
 *
 * `routesJson` builds the table's JSON text reusing, per application, the text of its routes
 * as long as the application, its observed container and its migrations are the same
 * objects: a change costs what it touches, not the 10k applications.
 */
import type { Route } from '#common/channel.ts';
import type { Application, Desired, Migration, ObservedContainer } from '#common/model.ts';
import { indexOf } from '../desired/desired-index.ts';

/** The container named `name` as node `node` last reported it. */
export type ContainerLookup = (node: string, name: string) => ObservedContainer | undefined;

export function routesOf(app: Application, seen: ObservedContainer | undefined, active: Migration | undefined, latest: Migration | undefined): Route[] {
  const node = app.node_uuid;
  const ready = seen !== undefined && seen.running && (app.health_check === undefined || seen.health === 'healthy');
  const hold = active?.phase === 'cutover' || (active?.phase === 'handoff' && !ready);
  const generation = latest?.generation ?? 0;
  const targetOf = (internal: number, protocol: 'udp' | undefined): Route['target'] => {
    const published = seen?.published.find((p) => p.internal === internal && p.protocol === protocol);
    return node !== undefined && published !== undefined ? { host: published.host, port: published.host_port, node_uuid: node } : null;
  };
  const routes: Route[] = app.ports.map((port) => ({
    application: app.name,
    external_port: port.external,
    target: targetOf(port.internal, port.protocol),
    hold,
    generation,
    ...(port.protocol !== undefined ? { protocol: port.protocol } : {}),
    ...(port.host_ip !== undefined ? { host_ip: port.host_ip } : {}),
  }));
  // Name routes (docs/DESIGN.md §21): each container port it publishes or exposes, at its
  // own number, on its name slot's address in every node's service subnet.
  if (app.name_slot !== undefined) {
    const seenKeys = new Set<string>();
    for (const port of [...app.ports, ...(app.expose ?? [])]) {
      const key = `${port.internal}/${port.protocol ?? 'tcp'}`;
      if (seenKeys.has(key)) continue;
      seenKeys.add(key);
      routes.push({
        application: app.name,
        external_port: port.internal,
        target: targetOf(port.internal, port.protocol),
        hold,
        generation,
        ...(port.protocol !== undefined ? { protocol: port.protocol } : {}),
        name_slot: app.name_slot,
      });
    }
  }
  return routes;
}

/** An application with routes: published ports, or a name slot with ports to reach. */
function routed(app: Application): boolean {
  return app.ports.length > 0 || (app.name_slot !== undefined && (app.expose?.length ?? 0) > 0);
}

export function computeRoutes(desired: Desired, container: ContainerLookup): Route[] {
  const index = indexOf(desired);
  return desired.applications.flatMap((app) =>
    !routed(app)
      ? []
      : routesOf(app, app.node_uuid === undefined ? undefined : container(app.node_uuid, app.name), index.activeMigrations.byApplication.get(app.name), index.latestMigrationByApplication.get(app.name)),
  );
}

interface Cached {
  seen: ObservedContainer | undefined;
  active: Migration | undefined;
  latest: Migration | undefined;
  /** The application's routes as JSON array items, without brackets ('' when none). */
  text: string;
}

const cache = new WeakMap<Application, Cached>();

/** `JSON.stringify(computeRoutes(desired, container))`, reusing unchanged applications' text. */
export function routesJson(desired: Desired, container: ContainerLookup): string {
  const index = indexOf(desired);
  const parts: string[] = [];
  for (const app of desired.applications) {
    if (!routed(app)) continue;
    const seen = app.node_uuid === undefined ? undefined : container(app.node_uuid, app.name);
    const active = index.activeMigrations.byApplication.get(app.name);
    const latest = index.latestMigrationByApplication.get(app.name);
    let hit = cache.get(app);
    if (!hit || hit.seen !== seen || hit.active !== active || hit.latest !== latest) {
      hit = { seen, active, latest, text: routesOf(app, seen, active, latest).map((r) => JSON.stringify(r)).join(',') };
      cache.set(app, hit);
    }
    parts.push(hit.text);
  }
  return `[${parts.join(',')}]`;
}

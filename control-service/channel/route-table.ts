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
  return app.ports.map((port) => {
    const published = seen?.published.find((p) => p.internal === port.internal);
    return {
      application: app.name,
      external_port: port.external,
      target: node !== undefined && published !== undefined ? { host: published.host, port: published.host_port, node_uuid: node } : null,
      hold,
      generation,
      ...(latest === undefined ? {} : { migration: latest.id }),
    };
  });
}

export function computeRoutes(desired: Desired, container: ContainerLookup): Route[] {
  const index = indexOf(desired);
  return desired.applications.flatMap((app) =>
    app.ports.length === 0
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
    if (app.ports.length === 0) continue;
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

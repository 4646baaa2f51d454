/**
 * The route table the proxies apply (common/channel.ts Route): for every external port of
 * every application, where it leads now. Pure.
 *
 * - target: the node the application is placed on (desired `node_uuid`) and the host port
 *   that node's agent reported publishing for the internal port; null while unknown.
 * - hold: true while a migration of the application is in cutover, and in handoff (or after a
 *   failover's decision) until the application runs on the target (healthy, when it has a
 *   health check). Proxies accept and hold new connections meanwhile, so a move loses none.
 *   Also while a single application's update replaces its container on its node, until the
 *   new one is ready (`update_hold`, desired/update-holds.ts, docs/DESIGN.md §30).
 * - generation: the fencing generation of the application's newest migration, 0 if none.
 * - migration: the correlation id of the hold — the newest update's (docs/DESIGN.md §30) or
 *   migration's, whichever started last; the update's while it holds.
 *
 * `routesJson` builds the table's JSON text reusing, per application, the text of its routes
 * as long as the application, its observed container and its migrations are the same
 * objects: a change costs what it touches, not the 10k applications.
 */
import type { Route } from '#common/channel.ts';
import type { Application, Desired, Migration, ObservedContainer } from '#common/model.ts';
import { indexOf } from '../desired/desired-index.ts';
import { isReplicated } from '../desired/instances.ts';
import { updateReady } from '../desired/update-holds.ts';
import { instanceRoutes } from './instance-routes.ts';

/** The container named `name` as node `node` last reported it. */
export type ContainerLookup = (node: string, name: string) => ObservedContainer | undefined;

/** A container port reached by name: declared (`ports:`, `expose:`) or learned from what the container published. */
type NamedPort = { internal: number; protocol?: 'udp' };

export function routesOf(
  app: Application,
  seen: ObservedContainer | undefined,
  active: Migration | undefined,
  latest: Migration | undefined,
  learned: readonly NamedPort[] = [],
  /** Several instances (instance-routes.ts): every ready instance's address for the port. */
  spread?: (internal: number, protocol: 'udp' | undefined) => NonNullable<Route['target']>[],
): Route[] {
  const node = app.node_uuid;
  const ready = seen !== undefined && seen.running && (app.health_check === undefined || seen.health === 'healthy');
  // A failover holds too, from its decision until the application runs on the chosen node
  // (docs/DESIGN.md §18 "The route hold"): the record is written `done`, so it is never active.
  const failingOver = latest?.failover !== undefined && latest.failover.ready_at === null;
  const update = app.update_hold;
  const updating = update !== undefined && !updateReady(app, seen);
  const hold = active?.phase === 'cutover' || ((active?.phase === 'handoff' || failingOver) && !ready) || updating;
  const generation = latest?.generation ?? 0;
  // The update's id while it holds, and after (the proxies' release records carry it) until a newer migration.
  const corr = update !== undefined && (updating || latest === undefined || latest.started_at < update.started_at) ? update.id : latest?.id;
  const targetOf = (internal: number, protocol: 'udp' | undefined): Route['target'] => {
    if (spread !== undefined) return spread(internal, protocol)[0] ?? null;
    const published = seen?.published.find((p) => p.internal === internal && p.protocol === protocol);
    return node !== undefined && published !== undefined ? { host: published.host, port: published.host_port, node_uuid: node } : null;
  };
  const routes: Route[] = app.ports.map((port) => ({
    application: app.name,
    external_port: port.external,
    target: targetOf(port.internal, port.protocol),
    ...(spread === undefined ? {} : { targets: spread(port.internal, port.protocol) }),
    hold,
    generation,
    ...(corr === undefined ? {} : { migration: corr }),
    ...(port.protocol !== undefined ? { protocol: port.protocol } : {}),
    ...(port.host_ip !== undefined ? { host_ip: port.host_ip } : {}),
  }));
  // Name routes (docs/DESIGN.md §21): each container port it publishes or exposes, at its
  // own number, on its name slot's address in every node's service subnet.
  if (app.name_slot !== undefined) {
    const seenKeys = new Set<string>();
    for (const port of [...app.ports, ...(app.expose ?? []), ...learned]) {
      const key = `${port.internal}/${port.protocol ?? 'tcp'}`;
      if (seenKeys.has(key)) continue;
      seenKeys.add(key);
      routes.push({
        application: app.name,
        external_port: port.internal,
        target: targetOf(port.internal, port.protocol),
        ...(spread === undefined ? {} : { targets: spread(port.internal, port.protocol) }),
        hold,
        generation,
        ...(corr === undefined ? {} : { migration: corr }),
        ...(port.protocol !== undefined ? { protocol: port.protocol } : {}),
        name_slot: app.name_slot,
      });
    }
  }
  return routes;
}

/** An application that may have routes: published ports, or a name slot (declared or learned ports). */
function routed(app: Application): boolean {
  return app.ports.length > 0 || app.name_slot !== undefined;
}

/**
 * The container ports each application was seen publishing under its current image — its
 * image's EXPOSE as well as what it declares — remembered while it moves, so that its name
 * routes (docs/DESIGN.md §21) stay, and hold, when no container of it is seen for a while (a
 * handoff). In memory: after a restart of the control service they are learned again from the
 * next report. A new image starts afresh.
 */
export class LearnedPorts {
  private readonly byApp = new Map<string, { image: string; ports: readonly NamedPort[] }>();
  private readonly touched = new Set<string>();

  /** `app`'s learned ports, updated from `seen`; the same array until they change. */
  note(app: Application, seen: ObservedContainer | undefined): readonly NamedPort[] {
    this.touched.add(app.name);
    let entry = this.byApp.get(app.name);
    if (entry === undefined || entry.image !== app.image) {
      entry = { image: app.image, ports: [] };
      this.byApp.set(app.name, entry);
    }
    if (seen !== undefined && seen.image === app.image) {
      const known = entry.ports;
      const fresh = seen.published.filter((p) => !known.some((k) => k.internal === p.internal && k.protocol === p.protocol));
      if (fresh.length > 0) {
        const added = fresh.map((p): NamedPort => (p.protocol === undefined ? { internal: p.internal } : { internal: p.internal, protocol: p.protocol }));
        entry.ports = [...known, ...added].filter((p, i, all) => all.findIndex((q) => q.internal === p.internal && q.protocol === p.protocol) === i);
      }
    }
    return entry.ports;
  }

  /** Forgets applications not noted since the last call (removed from the configuration). */
  sweep(): void {
    for (const name of this.byApp.keys()) if (!this.touched.has(name)) this.byApp.delete(name);
    this.touched.clear();
  }
}

export function computeRoutes(desired: Desired, container: ContainerLookup, learned?: LearnedPorts): Route[] {
  const index = indexOf(desired);
  return desired.applications.flatMap((app) => {
    if (!routed(app)) return [];
    if (isReplicated(app)) return instanceRoutes(app, container, learned);
    const seen = app.node_uuid === undefined ? undefined : container(app.node_uuid, app.name);
    const known = learned !== undefined && app.name_slot !== undefined ? learned.note(app, seen) : [];
    return routesOf(app, seen, index.activeMigrations.byApplication.get(app.name), index.latestMigrationByApplication.get(app.name), known);
  });
}

interface Cached {
  seen: ObservedContainer | undefined;
  known: readonly NamedPort[];
  active: Migration | undefined;
  latest: Migration | undefined;
  /** The application's routes as JSON array items, without brackets ('' when none). */
  text: string;
}

const cache = new WeakMap<Application, Cached>();

/** `JSON.stringify(computeRoutes(desired, container))`, reusing unchanged applications' text. */
export function routesJson(desired: Desired, container: ContainerLookup, learned?: LearnedPorts): string {
  const index = indexOf(desired);
  const parts: string[] = [];
  for (const app of desired.applications) {
    if (!routed(app)) continue;
    if (isReplicated(app)) {
      // Few and small: computed afresh (instance-routes.ts), their text changes with readiness.
      const text = instanceRoutes(app, container, learned).map((r) => JSON.stringify(r)).join(',');
      if (text !== '') parts.push(text);
      continue;
    }
    const seen = app.node_uuid === undefined ? undefined : container(app.node_uuid, app.name);
    const known = learned !== undefined && app.name_slot !== undefined ? learned.note(app, seen) : NONE;
    const active = index.activeMigrations.byApplication.get(app.name);
    const latest = index.latestMigrationByApplication.get(app.name);
    let hit = cache.get(app);
    if (!hit || hit.seen !== seen || hit.known !== known || hit.active !== active || hit.latest !== latest) {
      hit = { seen, known, active, latest, text: routesOf(app, seen, active, latest, known).map((r) => JSON.stringify(r)).join(',') };
      cache.set(app, hit);
    }
    if (hit.text !== '') parts.push(hit.text);
  }
  learned?.sweep();
  return `[${parts.join(',')}]`;
}

const NONE: readonly NamedPort[] = [];

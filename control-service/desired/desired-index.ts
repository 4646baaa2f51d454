/**
 * Lookups into one (immutable) desired document: "index by id" for the hot paths. Each map
 * is built lazily from one collection and cached by that collection's identity, so a new
 * document that shares a collection with the previous one (a move changes `migrations`,
 * not the 10k `datasets`) reuses its maps instead of rebuilding them.
 */
import type { Application, Dataset, Desired, Lease, Migration, Node } from '#common/model.ts';

/** Phases after which a migration no longer holds anything. */
export const FINISHED_PHASES: ReadonlySet<Migration['phase']> = new Set(['done', 'failed']);

/** Built maps, per collection array, per map name. */
const built = new WeakMap<object, Map<string, unknown>>();

function memo<T>(source: readonly unknown[], key: string, build: () => T): T {
  let maps = built.get(source);
  if (!maps) {
    maps = new Map();
    built.set(source, maps);
  }
  let value = maps.get(key) as T | undefined;
  if (value === undefined) {
    value = build();
    maps.set(key, value);
  }
  return value;
}

export class DesiredIndex {
  constructor(readonly desired: Desired) {}

  get nodes(): Map<string, Node> {
    return memo(this.desired.nodes, 'nodes', () => new Map(this.desired.nodes.map((n) => [n.uuid, n])));
  }

  get datasets(): Map<string, Dataset> {
    return memo(this.desired.datasets, 'datasets', () => new Map(this.desired.datasets.map((d) => [d.dataset_id, d])));
  }

  /** Position of each dataset in `desired.datasets`, to replace one without a search. */
  get datasetPositions(): Map<string, number> {
    return memo(this.desired.datasets, 'datasetPositions', () => new Map(this.desired.datasets.map((d, i) => [d.dataset_id, i])));
  }

  get applications(): Map<string, Application> {
    return memo(this.desired.applications, 'applications', () => new Map(this.desired.applications.map((a) => [a.name, a])));
  }

  get applicationPositions(): Map<string, number> {
    return memo(this.desired.applications, 'applicationPositions', () => new Map(this.desired.applications.map((a, i) => [a.name, i])));
  }

  /** Dataset id → the application that mounts it (at most one: an invariant). */
  get applicationByDataset(): Map<string, Application> {
    return memo(this.desired.applications, 'applicationByDataset', () => {
      const map = new Map<string, Application>();
      for (const app of this.desired.applications) for (const v of app.volumes) map.set(v.dataset_id, app);
      return map;
    });
  }

  /** External port → the application that publishes it. */
  get applicationByExternalPort(): Map<number, Application> {
    return memo(this.desired.applications, 'applicationByExternalPort', () => {
      const map = new Map<number, Application>();
      for (const app of this.desired.applications) for (const p of app.ports) map.set(p.external, app);
      return map;
    });
  }

  /** Applications the scheduler looks at: without a node, or with placement rules (in order). */
  get unplacedOrRuled(): Application[] {
    return memo(this.desired.applications, 'unplacedOrRuled', () => this.desired.applications.filter((a) => a.node_uuid === undefined || a.placement !== undefined));
  }

  get applicationsByNode(): Map<string, Application[]> {
    return memo(this.desired.applications, 'applicationsByNode', () => groupBy(this.desired.applications, (a) => a.node_uuid));
  }

  get datasetsByPrimary(): Map<string, Dataset[]> {
    return memo(this.desired.datasets, 'datasetsByPrimary', () => groupBy(this.desired.datasets, (d) => d.primary));
  }

  get leases(): Map<string, Lease> {
    return memo(this.desired.leases, 'leases', () => new Map(this.desired.leases.map((l) => [l.dataset_id, l])));
  }

  get migrations(): Map<string, Migration> {
    return memo(this.desired.migrations, 'migrations', () => new Map(this.desired.migrations.map((m) => [m.id, m])));
  }

  /** Unfinished migrations, by application name and by dataset id. */
  get activeMigrations(): { byApplication: Map<string, Migration>; byDataset: Map<string, Migration>; byNode: Map<string, Migration[]> } {
    return memo(this.desired.migrations, 'activeMigrations', () => {
      const byApplication = new Map<string, Migration>();
      const byDataset = new Map<string, Migration>();
      const byNode = new Map<string, Migration[]>();
      for (const m of this.desired.migrations) {
        if (FINISHED_PHASES.has(m.phase)) continue;
        if (m.application !== null) byApplication.set(m.application, m);
        for (const id of m.dataset_ids) byDataset.set(id, m);
        for (const node of new Set([m.from, m.to])) push(byNode, node, m);
      }
      return { byApplication, byDataset, byNode };
    });
  }

  /** The newest migration (finished or not) of each application: its generation fences routes. */
  get latestMigrationByApplication(): Map<string, Migration> {
    return memo(this.desired.migrations, 'latestMigrationByApplication', () => {
      const map = new Map<string, Migration>();
      for (const m of this.desired.migrations) {
        if (m.application === null) continue;
        const seen = map.get(m.application);
        if (!seen || seen.generation < m.generation) map.set(m.application, m);
      }
      return map;
    });
  }
}

/** Builds every map of the document's index now (at start, so no request pays for it). */
export function warmIndex(desired: Desired): void {
  const index = indexOf(desired);
  for (const key of Object.getOwnPropertyNames(DesiredIndex.prototype)) {
    if (key !== 'constructor') void index[key as keyof DesiredIndex];
  }
}

const indexes = new WeakMap<Desired, DesiredIndex>();

/** The index of a document (built once per document). */
export function indexOf(desired: Desired): DesiredIndex {
  let index = indexes.get(desired);
  if (!index) {
    index = new DesiredIndex(desired);
    indexes.set(desired, index);
  }
  return index;
}

function groupBy<T>(list: readonly T[], key: (item: T) => string | undefined): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of list) {
    const k = key(item);
    if (k !== undefined) push(map, k, item);
  }
  return map;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** A copy of `list` with `list[at]` replaced; keeps every other entry (and its caches). */
export function replaceAt<T>(list: readonly T[], at: number, entry: T): T[] {
  const next = list.slice();
  next[at] = entry;
  return next;
}

/**
 * Lookups into one (immutable) desired document, built lazily once per document and cached
 * by identity: "index by id" for the hot paths, without rebuilding on every request.
 */
import type { Application, Dataset, Desired, Lease, Migration, Node } from '#common/model.ts';

/** Phases after which a migration no longer holds anything. */
export const FINISHED_PHASES: ReadonlySet<Migration['phase']> = new Set(['done', 'failed']);

export class DesiredIndex {
  private cache = new Map<string, unknown>();

  constructor(readonly desired: Desired) {}

  private memo<T>(key: string, build: () => T): T {
    let value = this.cache.get(key) as T | undefined;
    if (value === undefined) {
      value = build();
      this.cache.set(key, value);
    }
    return value;
  }

  get nodes(): Map<string, Node> {
    return this.memo('nodes', () => new Map(this.desired.nodes.map((n) => [n.uuid, n])));
  }

  get datasets(): Map<string, Dataset> {
    return this.memo('datasets', () => new Map(this.desired.datasets.map((d) => [d.dataset_id, d])));
  }

  /** Position of each dataset in `desired.datasets`, to replace one without a search. */
  get datasetPositions(): Map<string, number> {
    return this.memo('datasetPositions', () => new Map(this.desired.datasets.map((d, i) => [d.dataset_id, i])));
  }

  get applications(): Map<string, Application> {
    return this.memo('applications', () => new Map(this.desired.applications.map((a) => [a.name, a])));
  }

  get applicationPositions(): Map<string, number> {
    return this.memo('applicationPositions', () => new Map(this.desired.applications.map((a, i) => [a.name, i])));
  }

  /** Dataset id → the application that mounts it (at most one: an invariant). */
  get applicationByDataset(): Map<string, Application> {
    return this.memo('applicationByDataset', () => {
      const map = new Map<string, Application>();
      for (const app of this.desired.applications) for (const v of app.volumes) map.set(v.dataset_id, app);
      return map;
    });
  }

  /** External port → the application that publishes it. */
  get applicationByExternalPort(): Map<number, Application> {
    return this.memo('applicationByExternalPort', () => {
      const map = new Map<number, Application>();
      for (const app of this.desired.applications) for (const p of app.ports) map.set(p.external, app);
      return map;
    });
  }

  get applicationsByNode(): Map<string, Application[]> {
    return this.memo('applicationsByNode', () => groupBy(this.desired.applications, (a) => a.node_uuid));
  }

  get datasetsByPrimary(): Map<string, Dataset[]> {
    return this.memo('datasetsByPrimary', () => groupBy(this.desired.datasets, (d) => d.primary));
  }

  get leases(): Map<string, Lease> {
    return this.memo('leases', () => new Map(this.desired.leases.map((l) => [l.dataset_id, l])));
  }

  get migrations(): Map<string, Migration> {
    return this.memo('migrations', () => new Map(this.desired.migrations.map((m) => [m.id, m])));
  }

  /** Unfinished migrations, by application name and by dataset id. */
  get activeMigrations(): { byApplication: Map<string, Migration>; byDataset: Map<string, Migration>; byNode: Map<string, Migration[]> } {
    return this.memo('activeMigrations', () => {
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
    return this.memo('latestMigrationByApplication', () => {
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

/**
 * Lookups into one (immutable) desired document: "index by id" for the hot paths. Each map
 * is built lazily from one collection and cached by that collection's identity, so a new
 * document that shares a collection with the previous one (a move changes `migrations`,
 * not the 10k `datasets`) reuses its maps instead of rebuilding them.
 */
import { isTerminal } from '#common/migration-protocol.ts';
import { externalKey, type Application, type Dataset, type Desired, type Lease, type Migration, type Node } from '#common/model.ts';
import { replacedInPlace } from './list-diff.ts';

const appKey = (a: Application) => a.name;
const datasetKey = (d: Dataset) => d.dataset_id;
const unplacedOrRuled = (a: Application) => a.node_uuid === undefined || a.placement !== undefined;

/** Built maps, per collection array, per map name. */
const built = new WeakMap<object, Map<string, unknown>>();
/** Per map name, the collection it was last built from (weakly): the base of the next update. */
const last = new Map<string, { source: WeakRef<readonly unknown[]>; value: WeakRef<object> }>();

/**
 * The value `build` makes from `source`, once per array. When the same map was last made
 * from an array that `source` replaces in a few positions (keys kept), `update` derives it
 * from that one instead (a handoff at 10k: no rebuild of ten 10k-entry maps).
 */
function memo<T extends object, E>(
  source: readonly E[],
  key: string,
  build: () => T,
  update?: (previous: T, before: readonly E[], positions: number[]) => T,
  entryKey?: (entry: E) => unknown,
): T {
  let maps = built.get(source);
  if (!maps) {
    maps = new Map();
    built.set(source, maps);
  }
  let value = maps.get(key) as T | undefined;
  if (value === undefined) {
    const base = update && entryKey ? last.get(key) : undefined;
    const before = base?.source.deref() as readonly E[] | undefined;
    const previous = base?.value.deref() as T | undefined;
    const positions = before && previous ? replacedInPlace(before, source, entryKey!) : null;
    value = positions !== null && previous ? update!(previous, before!, positions) : build();
    maps.set(key, value);
    if (update) last.set(key, { source: new WeakRef(source), value: new WeakRef(value) });
  }
  return value;
}

/**
 * `base` with the values of a few existing keys replaced, without copying it (copying a
 * 10k-entry Map takes ~5 ms). Read-only; after 16 layers it is flattened into a plain Map.
 */
class LayeredMap<K, V> extends Map<K, V> {
  private constructor(
    private readonly base: Map<K, V>,
    private readonly changed: Map<K, V>,
    private readonly depth: number,
  ) {
    super();
  }

  static over<K, V>(base: Map<K, V>, changed: Map<K, V>): Map<K, V> {
    const depth = base instanceof LayeredMap ? base.depth + 1 : 1;
    if (depth <= 16) return new LayeredMap(base, changed, depth);
    const flat = new Map(base);
    for (const [k, v] of changed) flat.set(k, v);
    return flat;
  }

  override get(key: K): V | undefined {
    return this.changed.has(key) ? this.changed.get(key) : this.base.get(key);
  }

  override has(key: K): boolean {
    return this.base.has(key);
  }

  override get size(): number {
    return this.base.size;
  }

  override *entries(): MapIterator<[K, V]> {
    for (const [k, v] of this.base) yield [k, this.changed.has(k) ? this.changed.get(k)! : v];
  }

  override [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  override *keys(): MapIterator<K> {
    yield* this.base.keys();
  }

  override *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  override forEach(fn: (value: V, key: K, map: Map<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }

  override set(): this {
    throw new TypeError('an index map is read-only');
  }

  override delete(): boolean {
    throw new TypeError('an index map is read-only');
  }

  override clear(): void {
    throw new TypeError('an index map is read-only');
  }
}

/** `map` with the entries at `positions` of `after` set (their keys are already in it). */
function setAt<E>(map: Map<string, E>, after: readonly E[], positions: number[], key: (e: E) => string): Map<string, E> {
  const changed = new Map<string, E>();
  for (const i of positions) changed.set(key(after[i]!), after[i]!);
  return LayeredMap.over(map, changed);
}

/** A copy of a group-by map where the groups touched by `positions` are recomputed in order. */
function regroup<E>(map: Map<string, E[]>, before: readonly E[], after: readonly E[], positions: number[], group: (e: E) => string | undefined): Map<string, E[]> {
  const touched = new Set<string>();
  for (const i of positions) {
    for (const g of [group(before[i]!), group(after[i]!)]) if (g !== undefined) touched.add(g);
  }
  const out = new Map(map);
  for (const g of touched) out.delete(g);
  for (const entry of after) {
    const g = group(entry);
    if (g !== undefined && touched.has(g)) push(out, g, entry);
  }
  return out;
}

export class DesiredIndex {
  constructor(readonly desired: Desired) {}

  get nodes(): Map<string, Node> {
    return memo(this.desired.nodes, 'nodes', () => new Map(this.desired.nodes.map((n) => [n.uuid, n])), (m, _b, at) => setAt(m, this.desired.nodes, at, (n) => n.uuid), (n) => n.uuid);
  }

  get datasets(): Map<string, Dataset> {
    return memo(this.desired.datasets, 'datasets', () => new Map(this.desired.datasets.map((d) => [d.dataset_id, d])), (m, _b, at) => setAt(m, this.desired.datasets, at, datasetKey), datasetKey);
  }

  /** Position of each dataset in `desired.datasets`, to replace one without a search. */
  get datasetPositions(): Map<string, number> {
    return memo(this.desired.datasets, 'datasetPositions', () => new Map(this.desired.datasets.map((d, i) => [d.dataset_id, i])), (m) => m, datasetKey);
  }

  get applications(): Map<string, Application> {
    return memo(this.desired.applications, 'applications', () => new Map(this.desired.applications.map((a) => [a.name, a])), (m, _b, at) => setAt(m, this.desired.applications, at, appKey), appKey);
  }

  get applicationPositions(): Map<string, number> {
    return memo(this.desired.applications, 'applicationPositions', () => new Map(this.desired.applications.map((a, i) => [a.name, i])), (m) => m, appKey);
  }

  /** Dataset id → the application that mounts it (at most one: an invariant). */
  get applicationByDataset(): Map<string, Application> {
    return memo(
      this.desired.applications,
      'applicationByDataset',
      () => {
        const map = new Map<string, Application>();
        for (const app of this.desired.applications) for (const v of app.volumes) map.set(v.dataset_id, app);
        return map;
      },
      (m, _b, at) => {
        const changed = new Map<string, Application>();
        for (const i of at) for (const v of this.desired.applications[i]!.volumes) changed.set(v.dataset_id, this.desired.applications[i]!);
        return LayeredMap.over(m, changed);
      },
      // Same name and the same volumes: no dataset changes hands.
      (a) => `${a.name}\n${a.volumes.map((v) => v.dataset_id).join(',')}`,
    );
  }

  /** External port (`externalKey`: `8080`, `53/udp`) → the application that publishes it. */
  get applicationByExternalPort(): Map<string, Application> {
    return memo(
      this.desired.applications,
      'applicationByExternalPort',
      () => {
        const map = new Map<string, Application>();
        for (const app of this.desired.applications) for (const p of app.ports) map.set(externalKey(p), app);
        return map;
      },
      (m, _b, at) => {
        const changed = new Map<string, Application>();
        for (const i of at) for (const p of this.desired.applications[i]!.ports) changed.set(externalKey(p), this.desired.applications[i]!);
        return LayeredMap.over(m, changed);
      },
      (a) => `${a.name}\n${a.ports.map(externalKey).join(',')}`,
    );
  }

  /** Applications the scheduler looks at: without a node, or with placement rules (in order). */
  get unplacedOrRuled(): Application[] {
    return memo(this.desired.applications, 'unplacedOrRuled', () => this.desired.applications.filter(unplacedOrRuled));
  }

  get applicationsByNode(): Map<string, Application[]> {
    return memo(this.desired.applications, 'applicationsByNode', () => groupBy(this.desired.applications, (a) => a.node_uuid), (m, b, at) => regroup(m, b, this.desired.applications, at, (a) => a.node_uuid), appKey);
  }

  get datasetsByPrimary(): Map<string, Dataset[]> {
    return memo(this.desired.datasets, 'datasetsByPrimary', () => groupBy(this.desired.datasets, (d) => d.primary), (m, b, at) => regroup(m, b, this.desired.datasets, at, (d) => d.primary), datasetKey);
  }

  /** Datasets with a replication policy or replicas (docs/DESIGN.md §17), in order. */
  get replicatedDatasets(): Dataset[] {
    return memo(this.desired.datasets, 'replicatedDatasets', () => this.desired.datasets.filter((d) => d.replication !== null || d.replicas.length > 0));
  }

  /** Node → the datasets it is a replica of. */
  get datasetsByReplica(): Map<string, Dataset[]> {
    return memo(this.desired.datasets, 'datasetsByReplica', () => {
      const map = new Map<string, Dataset[]>();
      for (const d of this.replicatedDatasets) for (const r of d.replicas) push(map, r, d);
      return map;
    });
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
        if (isTerminal(m.phase)) continue;
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

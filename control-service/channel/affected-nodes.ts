/**
 * Which agents' views a change of the desired configuration touches (agent-views.ts says
 * what a view holds), found from the entries that changed identity. A move changes one
 * migration: two nodes are touched, not all 200. Pure.
 */
import type { Application, Dataset, Desired } from '#common/model.ts';
import { indexOf } from '../desired/desired-index.ts';
import { replacedPositions } from '../desired/list-diff.ts';

/** `holding(datasetId)`: the nodes that reported the dataset present. */
export function affectedNodes(before: Desired, after: Desired, holding: (datasetId: string) => Iterable<string>): Set<string> | 'all' {
  if (before.nodes !== after.nodes) return 'all';
  const out = new Set<string>();
  const add = (node: string | undefined) => {
    if (node !== undefined) out.add(node);
  };
  const datasetTouched = (id: string) => {
    for (const doc of [before, after]) {
      const index = indexOf(doc);
      const dataset = index.datasets.get(id);
      add(dataset?.primary);
      for (const replica of dataset?.replicas ?? []) add(replica);
      add(index.applicationByDataset.get(id)?.node_uuid);
      const moving = index.activeMigrations.byDataset.get(id);
      add(moving?.from);
      add(moving?.to);
    }
    for (const node of holding(id)) out.add(node);
  };
  for (const app of changedEntries<Application>(before.applications, after.applications)) {
    add(app.node_uuid);
    for (const i of app.placed ?? []) add(i.node_uuid);
    for (const doc of [before, after]) {
      const moving = indexOf(doc).activeMigrations.byApplication.get(app.name);
      add(moving?.from);
      add(moving?.to);
    }
  }
  for (const d of changedEntries<Dataset>(before.datasets, after.datasets)) datasetTouched(d.dataset_id);
  for (const l of changedEntries(before.leases, after.leases)) datasetTouched(l.dataset_id);
  for (const m of changedEntries(before.migrations, after.migrations)) {
    add(m.from);
    add(m.to);
  }
  return out;
}

/** Entries in one list and not the other (by identity): the changed ones, old and new. */
function changedEntries<T extends object>(a: readonly T[], b: readonly T[]): T[] {
  if (a === b) return [];
  const positions = replacedPositions(a, b);
  if (positions !== null) return positions.flatMap((i) => [a[i]!, b[i]!]);
  const inA = new Set(a);
  const inB = new Set(b);
  return [...a.filter((x) => !inB.has(x)), ...b.filter((x) => !inA.has(x))];
}

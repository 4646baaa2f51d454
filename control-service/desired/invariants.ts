/**
 * Rules that span entries of the desired configuration, checked on every change after the
 * zod validation of each entry: unique identities, volumes that name live datasets (each
 * mounted by one application), external ports used once, constraints drover understands.
 * Returns the broken rules with their paths; O(size of the document).
 */
import type { Desired } from '#common/model.ts';
import { parseConstraint } from '../scheduler/constraints.ts';

export interface Issue {
  path: (string | number)[];
  message: string;
}

export function checkInvariants(desired: Desired): Issue[] {
  const issues: Issue[] = [];
  unique(desired.nodes, (n) => n.uuid, 'nodes', 'uuid', issues);
  const datasets = unique(desired.datasets, (d) => d.dataset_id, 'datasets', 'dataset_id', issues);
  unique(desired.applications, (a) => a.name, 'applications', 'name', issues);
  unique(desired.leases, (l) => l.dataset_id, 'leases', 'dataset_id', issues);
  unique(desired.migrations, (m) => m.id, 'migrations', 'id', issues);

  const mountedBy = new Map<string, string>();
  const portOwner = new Map<number, string>();
  desired.applications.forEach((app, i) => {
    app.volumes.forEach((v, j) => {
      const path = ['applications', i, 'volumes', j, 'dataset_id'];
      const dataset = datasets.get(v.dataset_id);
      if (!dataset) issues.push({ path, message: `names no dataset (${v.dataset_id})` });
      else if (dataset.deleted) issues.push({ path, message: `names a deleted dataset (${v.dataset_id})` });
      const user = mountedBy.get(v.dataset_id);
      if (user !== undefined) issues.push({ path, message: `dataset ${v.dataset_id} is already used by application "${user}"` });
      mountedBy.set(v.dataset_id, app.name);
    });
    app.ports.forEach((p, j) => {
      const owner = portOwner.get(p.external);
      if (owner !== undefined) issues.push({ path: ['applications', i, 'ports', j, 'external'], message: `external port ${p.external} is already used by application "${owner}"` });
      portOwner.set(p.external, app.name);
    });
    app.placement?.constraints.forEach((c, j) => {
      if (!parseConstraint(c)) {
        issues.push({ path: ['applications', i, 'placement', 'constraints', j], message: `"${c}" is not a constraint (node.labels.<name>, node.host or node.uuid, then == or !=, then a value)` });
      }
    });
  });
  return issues;
}

function unique<T, K>(list: readonly T[], key: (item: T) => K, collection: string, field: string, issues: Issue[]): Map<K, T> {
  const seen = new Map<K, T>();
  list.forEach((item, i) => {
    const k = key(item);
    if (seen.has(k)) issues.push({ path: [collection, i, field], message: `duplicate ${field} ${String(k)}` });
    else seen.set(k, item);
  });
  return seen;
}

/**
 * Rules that span entries of the desired configuration, checked on every change after the
 * zod validation of each entry: unique identities, volumes that name live datasets (each
 * mounted by one application), external ports used once, constraints drover understands.
 * Returns the broken rules with their paths.
 *
 * Each rule depends on one or two collections and is remembered per collection array: a
 * change that leaves a collection as it was (a move touches only `migrations`) does not
 * check it again, and one that replaces a few entries without changing what a rule reads
 * of them (a handoff: node_uuid and primary) reuses the last result, so the cost follows
 * what changed.
 */
import { externalKey, type Application, type Desired } from '#common/model.ts';
import { parseConstraint } from '../scheduler/constraints.ts';
import { indexOf } from './desired-index.ts';
import { replacedInPlace } from './list-diff.ts';
import { isReplicated } from './instances.ts';

export interface Issue {
  path: (string | number)[];
  message: string;
}

const uniqueChecked = new WeakMap<readonly object[], Issue[]>();
const applicationsChecked = new WeakMap<readonly Application[], { datasets: Desired['datasets']; issues: Issue[] }>();

export function checkInvariants(desired: Desired): Issue[] {
  return [
    ...unique(desired.nodes, (n) => n.uuid, 'nodes', 'uuid'),
    ...unique(desired.datasets, (d) => d.dataset_id, 'datasets', 'dataset_id'),
    ...unique(desired.applications, (a) => a.name, 'applications', 'name'),
    ...unique(desired.leases, (l) => l.dataset_id, 'leases', 'dataset_id'),
    ...unique(desired.migrations, (m) => m.id, 'migrations', 'id'),
    ...applicationRules(desired),
    ...replicaRules(desired),
  ];
}

/** A dataset's replicas (docs/DESIGN.md §17): distinct, never its primary. */
function replicaRules(desired: Desired): Issue[] {
  const issues: Issue[] = [];
  const index = indexOf(desired);
  for (const d of index.replicatedDatasets) {
    const seen = new Set<string>();
    d.replicas.forEach((r, j) => {
      const path = ['datasets', index.datasetPositions.get(d.dataset_id)!, 'replicas', j];
      if (r === d.primary) issues.push({ path, message: `node ${r} is the dataset's primary, which is never one of its replicas` });
      if (seen.has(r)) issues.push({ path, message: `node ${r} is named twice` });
      seen.add(r);
    });
  }
  return issues;
}

/** What the application rules read of an application, and of a dataset. */
const appShape = (a: Application) => JSON.stringify([a.name, a.volumes.map((v) => v.dataset_id), a.ports.map(externalKey), a.name_slot ?? null, a.placement?.constraints ?? [], a.instances ?? null, a.mode ?? null, a.node_uuid !== undefined && isReplicated(a)]);
const datasetShape = (d: Desired['datasets'][number]) => `${d.dataset_id}\n${d.deleted}`;
/** The last pair checked: a change that leaves what the rules read as it was reuses its issues. */
let lastChecked: { applications: readonly Application[]; datasets: Desired['datasets']; issues: Issue[] } | null = null;

function applicationRules(desired: Desired): Issue[] {
  const seen = applicationsChecked.get(desired.applications);
  if (seen && seen.datasets === desired.datasets) return seen.issues;
  // A handoff or a placement changes node_uuid/primary only: the same rules, same issues.
  if (
    lastChecked &&
    replacedInPlace(lastChecked.applications, desired.applications, appShape) !== null &&
    replacedInPlace(lastChecked.datasets, desired.datasets, datasetShape) !== null
  ) {
    lastChecked = { applications: desired.applications, datasets: desired.datasets, issues: lastChecked.issues };
    return lastChecked.issues;
  }
  const datasets = indexOf(desired).datasets;
  const issues: Issue[] = [];
  const mountedBy = new Map<string, string>();
  const portOwner = new Map<string, string>();
  const slotOwner = new Map<number, string>();
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
      const owner = portOwner.get(externalKey(p));
      if (owner !== undefined) issues.push({ path: ['applications', i, 'ports', j, 'external'], message: `external port ${externalKey(p)} is already used by application "${owner}"` });
      portOwner.set(externalKey(p), app.name);
    });
    if (app.name_slot !== undefined) {
      const owner = slotOwner.get(app.name_slot);
      if (owner !== undefined) issues.push({ path: ['applications', i, 'name_slot'], message: `name slot ${app.name_slot} is already used by application "${owner}"` });
      slotOwner.set(app.name_slot, app.name);
    }
    if (isReplicated(app)) {
      // Several instances (docs/DESIGN.md §30): stateless only, placed by the scheduler.
      const field = app.instances !== undefined ? 'instances' : 'mode';
      if (app.volumes.length > 0) issues.push({ path: ['applications', i, field], message: `an application with a dataset runs as one instance (its data is on one node): drop "${field}", or its volumes` });
      if (app.instances !== undefined && app.mode !== undefined) issues.push({ path: ['applications', i, 'mode'], message: 'a global application runs one instance per node: give "mode" or "instances", not both' });
      if (app.node_uuid !== undefined) issues.push({ path: ['applications', i, 'node_uuid'], message: 'the scheduler places each instance: give placement constraints instead of a node' });
    }
    const dot = app.name.lastIndexOf('.');
    if (dot > 0 && /^\d+$/.test(app.name.slice(dot + 1)) && replicatedNames(desired.applications).has(app.name.slice(0, dot))) {
      issues.push({ path: ['applications', i, 'name'], message: `"${app.name}" is the name of an instance of "${app.name.slice(0, dot)}"` });
    }
    app.placement?.constraints.forEach((c, j) => {
      if (!parseConstraint(c)) {
        issues.push({ path: ['applications', i, 'placement', 'constraints', j], message: `"${c}" is not a constraint (node.labels.<name>, node.host or node.uuid, then == or !=, then a value)` });
      }
    });
  });
  if (Object.isFrozen(desired.applications)) applicationsChecked.set(desired.applications, { datasets: desired.datasets, issues });
  if (Object.isFrozen(desired.applications) && Object.isFrozen(desired.datasets)) lastChecked = { applications: desired.applications, datasets: desired.datasets, issues };
  return issues;
}

/** Per collection, the last list checked for unique keys. */
const lastUnique = new Map<string, { list: readonly object[]; issues: Issue[] }>();

function unique<T extends object>(list: readonly T[], key: (item: T) => string, collection: string, field: string): Issue[] {
  const known = uniqueChecked.get(list);
  if (known) return known;
  const previous = lastUnique.get(collection);
  if (previous && Object.isFrozen(list) && replacedInPlace(previous.list as readonly T[], list, key) !== null) {
    // The same keys at the same positions: the same issues.
    uniqueChecked.set(list, previous.issues);
    lastUnique.set(collection, { list, issues: previous.issues });
    return previous.issues;
  }
  const issues: Issue[] = [];
  const seen = new Set<string>();
  list.forEach((item, i) => {
    const k = key(item);
    if (seen.has(k)) issues.push({ path: [collection, i, field], message: `duplicate ${field} ${k}` });
    else seen.add(k);
  });
  if (Object.isFrozen(list)) {
    uniqueChecked.set(list, issues);
    lastUnique.set(collection, { list, issues });
  }
  return issues;
}

const replicatedCache = new WeakMap<readonly Application[], Set<string>>();
function replicatedNames(applications: readonly Application[]): Set<string> {
  let out = replicatedCache.get(applications);
  if (out === undefined) {
    out = new Set(applications.filter(isReplicated).map((a) => a.name));
    replicatedCache.set(applications, out);
  }
  return out;
}

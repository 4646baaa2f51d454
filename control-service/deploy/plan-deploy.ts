import { DroverError } from '#common/errors.ts';
import type { Application, Dataset, Desired } from '#common/model.ts';
import { UNPLACED_PRIMARY, externalKey } from '#common/model.ts';
import type { DeployDiff, Parsed } from './index.ts';
import { assignNames } from './names.ts';
import { changedKeys, sameValue } from './same-value.ts';

/**
 * Merges one project's parsed files into the desired configuration. A deploy owns its
 * project: the project's applications are added, changed and removed to match the files;
 * applications and datasets of other projects (or of none) are untouched. Pure and
 * idempotent: planning the same files against its own result changes nothing and the diff
 * lists everything as `unchanged`. Order is kept: entries stay where they were, new ones are
 * appended.
 *
 * - Removed services are removed; their datasets are kept (never deleted by a deploy) and the
 *   diff says so.
 * - Placement is sticky: an application the topology does not name keeps the node it runs on;
 *   one it names moves only when the topology names a different node than at the last deploy
 *   (`pinned_node_uuid`), so a `drover move` since is not undone. An application's datasets
 *   follow its node.
 *
 * @throws DroverError `DROVER_CONFLICT` when an application name or a published port belongs
 *   to another project, or a dataset the files use belongs to another project or is deleted.
 */
export function planDeploy(desired: Desired, parsed: Parsed, project: string): { desired: Desired; diff: DeployDiff } {
  checkConflicts(desired, parsed, project);
  const diff: DeployDiff = { added: [], changed: [], removed: [], unchanged: [] };
  const oldApps = new Map(desired.applications.filter((a) => a.project === project).map((a) => [a.name, a]));
  const named = assignNames(
    parsed.applications.map((a) => place(a, oldApps.get(a.name))),
    oldApps,
    desired.applications.filter((a) => a.project !== project),
  );
  const newApps = new Map(named.map((a) => [a.name, a]));

  const applications: Application[] = [];
  for (const app of desired.applications) {
    if (app.project !== project) applications.push(app);
    else if (newApps.has(app.name)) applications.push(newApps.get(app.name)!);
    else diff.removed.push(removedLine(app, desired.datasets));
  }
  for (const app of newApps.values()) if (!oldApps.has(app.name)) applications.push(app);
  for (const app of newApps.values()) {
    const old = oldApps.get(app.name);
    // drover names containers itself; Compose's container_name is reported, and kept as a label.
    const label = `application "${app.name}"${app.container_name === undefined ? '' : ` (container_name "${app.container_name}": its container is "drover-${app.name}", labelled drover.container-name=${app.container_name})`}`;
    if (old === undefined) diff.added.push(label);
    else if (sameValue(old, app)) diff.unchanged.push(label);
    else {
      const move = old.node_uuid !== app.node_uuid && old.node_uuid !== undefined ? ` (moves from node ${old.node_uuid} to ${app.node_uuid ?? 'the scheduler'} with its data)` : '';
      diff.changed.push(`application "${app.name}": ${changedLine(old, app)}${move}`);
    }
  }

  const nodeOfDataset = new Map<string, string | undefined>();
  for (const app of newApps.values()) for (const v of app.volumes) nodeOfDataset.set(v.dataset_id, app.node_uuid);
  const wanted = new Map(parsed.datasets.map((d) => [d.dataset_id, d]));
  const oldDatasets = new Map(desired.datasets.map((d) => [d.dataset_id, d]));
  const merged = new Map<string, Dataset>();
  for (const d of wanted.values()) {
    const old = oldDatasets.get(d.dataset_id);
    const primary = nodeOfDataset.get(d.dataset_id) ?? (old !== undefined && old.primary !== UNPLACED_PRIMARY ? old.primary : d.primary);
    // A dataset adopted by id (a Flocker file's `dataset_id`) keeps its name; it joins the project.
    const next: Dataset = { ...(old ?? d), primary, maximum_size: d.maximum_size, metadata: { ...d.metadata, ...old?.metadata, project }, deleted: false };
    merged.set(d.dataset_id, next);
    const label = datasetLabel(next);
    if (old === undefined) diff.added.push(label);
    else if (sameValue(old, next)) diff.unchanged.push(label);
    else diff.changed.push(`${label}: ${changedLine(old, next)}`);
  }
  const datasets = desired.datasets.map((d) => merged.get(d.dataset_id) ?? d);
  for (const d of merged.values()) if (!oldDatasets.has(d.dataset_id)) datasets.push(d);
  for (const d of desired.datasets) {
    if (d.metadata.project === project && !d.deleted && !wanted.has(d.dataset_id) && !isOfRemovedApp(d, oldApps, newApps)) {
      diff.unchanged.push(`${datasetLabel(d)} (no longer used by any service; kept, not deleted)`);
    }
  }
  return { desired: { ...desired, applications, datasets }, diff };
}

function place(app: Application, old: Application | undefined): Application {
  const pin = app.pinned_node_uuid;
  let node: string | undefined;
  if (pin !== undefined) node = old !== undefined && old.pinned_node_uuid === pin && old.node_uuid !== undefined ? old.node_uuid : pin;
  else node = old?.node_uuid;
  const { node_uuid: _ignored, ...rest } = app;
  // An update in progress is the control service's (desired/update-holds.ts): kept, so that the same files again are `unchanged`.
  const held = old?.update_hold === undefined ? rest : { ...rest, update_hold: old.update_hold };
  const placed = node === undefined ? held : { ...held, node_uuid: node };
  return old !== undefined && runsInstances(app) && runsInstances(old) ? { ...placed, ...scheduled(old) } : placed;
}

/** `instances` or `mode: global` (docs/DESIGN.md §30), as control-service/desired/instances.ts says. */
function runsInstances(app: Application): boolean {
  return app.instances !== undefined || app.mode === 'global';
}

/**
 * What the scheduler keeps on an application with instances — where each runs, the next id,
 * its revisions and rollout — kept, as the control service keeps them after the write
 * (desired/instances.ts `carryInstances`), so that the same files again are `unchanged`
 * rather than "changed: next_instance, placed". A changed spec still raises the revision there.
 */
function scheduled(old: Application): Partial<Application> {
  const out: Partial<Application> = {};
  for (const key of ['placed', 'next_instance', 'revision', 'revisions', 'rollout'] as const) {
    if (old[key] !== undefined) (out as Record<string, unknown>)[key] = old[key];
  }
  return out;
}

function checkConflicts(desired: Desired, parsed: Parsed, project: string): void {
  const others = desired.applications.filter((a) => a.project !== project);
  for (const app of parsed.applications) {
    const other = others.find((a) => a.name === app.name);
    if (other !== undefined) {
      throw conflict(`application "${app.name}" already exists ${ownerText(other.project)}`, { application: app.name, project: other.project ?? null });
    }
    for (const port of app.ports) {
      const user = others.find((a) => a.ports.some((p) => externalKey(p) === externalKey(port)));
      if (user !== undefined) {
        throw conflict(`service "${app.name}": published port ${externalKey(port)} is already used by application "${user.name}" ${ownerText(user.project)}`, {
          application: app.name,
          port: port.external,
        });
      }
    }
  }
  for (const d of parsed.datasets) {
    const old = desired.datasets.find((o) => o.dataset_id === d.dataset_id);
    if (old === undefined) continue;
    if (old.deleted) throw conflict(`${datasetLabel(d)} was deleted; a deleted dataset cannot be used again`, { dataset_id: d.dataset_id });
    const owner = old.metadata.project;
    if (owner !== undefined && owner !== project) {
      throw conflict(`${datasetLabel(d)} belongs to project "${owner}"`, { dataset_id: d.dataset_id, project: owner });
    }
  }
}

function conflict(message: string, detail: Record<string, unknown>): DroverError {
  return new DroverError('DROVER_CONFLICT', message, { detail });
}

function ownerText(project: string | undefined): string {
  return project === undefined ? 'outside any deploy project' : `in project "${project}"`;
}

function datasetLabel(d: Dataset): string {
  const name = d.metadata.name;
  return name === undefined ? `dataset ${d.dataset_id}` : `dataset "${name}" (${d.dataset_id})`;
}

function changedLine(old: Record<string, unknown>, next: Record<string, unknown>): string {
  return changedKeys(old, next).join(', ');
}

function removedLine(app: Application, datasets: readonly Dataset[]): string {
  if (app.volumes.length === 0) return `application "${app.name}"`;
  const names = app.volumes.map((v) => {
    const d = datasets.find((x) => x.dataset_id === v.dataset_id);
    return d === undefined ? v.dataset_id : datasetLabel(d).replace(/^dataset /, '');
  });
  return `application "${app.name}" (its dataset${names.length > 1 ? 's' : ''} ${names.join(', ')} kept, not deleted)`;
}

/** Datasets of a removed application are already named in its `removed` line. */
function isOfRemovedApp(d: Dataset, oldApps: Map<string, Application>, newApps: Map<string, Application>): boolean {
  for (const app of oldApps.values()) {
    if (!newApps.has(app.name) && app.volumes.some((v) => v.dataset_id === d.dataset_id)) return true;
  }
  return false;
}

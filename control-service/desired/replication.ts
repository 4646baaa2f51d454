/**
 * Replication policy changes to the desired configuration (docs/DESIGN.md §17), as pure
 * functions: desired in, desired out, a DroverError when refused. A policy change touches
 * `replication` (and, through the scheduler, `replicas`) and nothing else: no restart, no
 * move.
 */
import { DroverError } from '#common/errors.ts';
import type { Application, Dataset, Desired, ReplicationPolicy } from '#common/model.ts';
import type { ReplicaChoice } from '../scheduler/replicas.ts';
import { replicasDiffer } from '../scheduler/replicas.ts';
import { replaceApplication } from './applications.ts';
import { indexOf, replaceAt } from './desired-index.ts';
import { findApplication, findDataset } from './lookups.ts';

const samePolicy = (a: ReplicationPolicy | null, b: ReplicationPolicy | null) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Sets a dataset's policy (null: stop replicating). Unchanged when equal.
 * @throws DROVER_DATASET_NOT_FOUND, DROVER_DATASET_DELETED, DROVER_INVALID_REQUEST (assertFreezable)
 */
export function setDatasetReplication(desired: Desired, datasetId: string, policy: ReplicationPolicy | null): Desired {
  const dataset = findDataset(desired, datasetId);
  if (dataset.deleted) throw new DroverError('DROVER_DATASET_DELETED', 'The dataset has been deleted.', { detail: { dataset_id: datasetId } });
  assertFreezable(desired, datasetId, policy);
  return withPolicy(desired, [datasetId], policy);
}

/**
 * `freeze_during_snapshot` pauses the containers of the application that mounts the dataset
 * (docs/DESIGN.md §47): a dataset policy that asks for it where no application mounts the
 * dataset (a bare dataset, a new one) is refused, naming the field, rather than silently
 * freezing nothing. An application's policy reaches its datasets through withPolicy, not here.
 * @throws DROVER_INVALID_REQUEST
 */
export function assertFreezable(desired: Desired, datasetId: string, policy: ReplicationPolicy | null | undefined): void {
  if (policy?.freeze_during_snapshot !== true || indexOf(desired).applicationByDataset.has(datasetId)) return;
  throw new DroverError('DROVER_INVALID_REQUEST', 'replication.freeze_during_snapshot: no application mounts this dataset, so there is nothing to freeze during its snapshots; set it on the application instead', {
    detail: { dataset_id: datasetId, field: 'replication.freeze_during_snapshot' },
  });
}

/**
 * Sets an application's policy and copies it onto every dataset it mounts.
 * @throws DROVER_APPLICATION_NOT_FOUND (or the registry's not-found code of lookups.ts)
 */
export function setApplicationReplication(desired: Desired, name: string, policy: ReplicationPolicy | null): Desired {
  const app = findApplication(desired, name);
  const out = samePolicy(app.replication, policy) ? desired : replaceApplication(desired, { ...app, replication: policy });
  return withPolicy(out, app.volumes.map((v) => v.dataset_id), policy);
}

/**
 * Copies each application's policy onto the datasets it mounts, for the applications whose
 * policy is new or changed since `before` (a deploy, the containers API). A dataset's own
 * policy, set since, stands until its application's policy changes again.
 */
export function copyApplicationPolicies(before: Desired, after: Desired): Desired {
  if (before.applications === after.applications) return after;
  const old = indexOf(before).applications;
  let out = after;
  for (const app of after.applications) {
    const was: Application | undefined = old.get(app.name);
    if (was === app) continue;
    const changed = was === undefined ? app.replication !== null : !samePolicy(was.replication, app.replication);
    const mounted = app.volumes.map((v) => v.dataset_id);
    const added = was === undefined ? [] : mounted.filter((id) => !was.volumes.some((v) => v.dataset_id === id));
    if (changed) out = withPolicy(out, mounted, app.replication);
    else if (app.replication !== null && added.length > 0) out = withPolicy(out, added, app.replication);
  }
  return out;
}

/** Writes the scheduler's choice of replicas into the datasets whose replicas differ. */
export function applyReplicas(desired: Desired, choices: ReadonlyMap<string, ReplicaChoice>): Desired {
  let datasets: Dataset[] | null = null;
  const positions = indexOf(desired).datasetPositions;
  for (const [id, choice] of choices) {
    const at = positions.get(id);
    const dataset = at === undefined ? undefined : desired.datasets[at];
    if (at === undefined || !dataset || !replicasDiffer(dataset, choice)) continue;
    datasets ??= desired.datasets.slice();
    datasets[at] = { ...dataset, replicas: choice.replicas };
  }
  return datasets === null ? desired : { ...desired, datasets };
}

function withPolicy(desired: Desired, datasetIds: readonly string[], policy: ReplicationPolicy | null): Desired {
  let out = desired;
  for (const id of datasetIds) {
    const at = indexOf(out).datasetPositions.get(id);
    const dataset = at === undefined ? undefined : out.datasets[at];
    if (at === undefined || !dataset || dataset.deleted || samePolicy(dataset.replication, policy)) continue;
    out = { ...out, datasets: replaceAt(out.datasets, at, { ...dataset, replication: policy }) };
  }
  return out;
}

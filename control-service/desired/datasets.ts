/**
 * Dataset changes to the desired configuration (Flocker's `/v1/configuration/datasets`),
 * as pure functions: desired in, desired out, a DroverError when refused.
 */
import { randomUUID } from 'node:crypto';
import { DroverError } from '#common/errors.ts';
import type { Dataset, Desired, ReplicationPolicy } from '#common/model.ts';
import { indexOf, replaceAt } from './desired-index.ts';
import { assertNotLeasedAway } from './leases.ts';
import { findDataset } from './lookups.ts';
import { startMigration, type MigrationStart } from './migrations.ts';
import { assertFreezable } from './replication.ts';

export interface CreateDataset {
  primary: string;
  dataset_id?: string | undefined;
  maximum_size?: number | null | undefined;
  metadata?: Record<string, string> | undefined;
  /** drover's extension: continuous replication (the scheduler then chooses `replicas`). */
  replication?: ReplicationPolicy | null | undefined;
}

export function createDataset(desired: Desired, input: CreateDataset, newId: () => string = randomUUID): { desired: Desired; dataset: Dataset } {
  const datasetId = input.dataset_id ?? newId();
  if (indexOf(desired).datasets.has(datasetId)) {
    throw new DroverError('DROVER_DATASET_ID_IN_USE', 'The provided dataset_id is already in use.', { detail: { dataset_id: datasetId } });
  }
  assertFreezable(desired, datasetId, input.replication);
  const dataset: Dataset = {
    dataset_id: datasetId,
    primary: input.primary,
    maximum_size: input.maximum_size ?? null,
    metadata: input.metadata ?? {},
    deleted: false,
    replication: input.replication ?? null,
    replicas: [],
  };
  return { desired: { ...desired, datasets: [...desired.datasets, dataset] }, dataset };
}

/**
 * Moves a dataset's primary to `primary`: with its data, as a migration the agents run, so
 * `primary` changes only at handoff. A dataset mounted by an application moves with the
 * application instead (409). Moving to where it is, or where it is already moving, changes
 * nothing (the volume plugin asks again while it waits).
 */
export function moveDataset(
  desired: Desired,
  datasetId: string,
  primary: string,
  start: MigrationStart,
): { desired: Desired; dataset: Dataset; migration: Desired['migrations'][number] | null } {
  const index = indexOf(desired);
  const dataset = findDataset(desired, datasetId);
  if (dataset.deleted) throw new DroverError('DROVER_DATASET_DELETED', 'The dataset has been deleted.', { detail: { dataset_id: datasetId } });
  const active = index.activeMigrations.byDataset.get(datasetId);
  if (active && active.to === primary) return { desired, dataset, migration: active };
  if (!active && dataset.primary === primary) return { desired, dataset, migration: null };
  const app = index.applicationByDataset.get(datasetId);
  if (app) {
    throw new DroverError('DROVER_DATASET_ATTACHED', `The dataset is used by container "${app.name}"; move the container instead.`, {
      detail: { dataset_id: datasetId, application: app.name },
    });
  }
  assertNotLeasedAway(desired, [datasetId], primary, start.now);
  const moved = startMigration(desired, { application: null, datasetIds: [datasetId], from: dataset.primary, to: primary }, start);
  return { desired: moved.desired, dataset: indexOf(moved.desired).datasets.get(datasetId)!, migration: moved.migration };
}

/**
 * Soft delete (Flocker's): the dataset stays, marked `deleted`, and agents destroy their
 * copies. Idempotent. Refused while it is leased, mounted by an application, or moving.
 */
export function deleteDataset(desired: Desired, datasetId: string, now: number): { desired: Desired; dataset: Dataset } {
  const index = indexOf(desired);
  const dataset = findDataset(desired, datasetId);
  if (dataset.deleted) return { desired, dataset };
  assertNotLeasedAway(desired, [datasetId], null, now);
  const app = index.applicationByDataset.get(datasetId);
  if (app) {
    throw new DroverError('DROVER_DATASET_ATTACHED', `The dataset is used by container "${app.name}"; delete the container first.`, {
      detail: { dataset_id: datasetId, application: app.name },
    });
  }
  const moving = index.activeMigrations.byDataset.get(datasetId);
  if (moving) {
    throw new DroverError('DROVER_MIGRATION_ACTIVE', `The dataset is moving (migration ${moving.id}, ${moving.phase}).`, {
      detail: { dataset_id: datasetId, migration: moving.id },
    });
  }
  const deleted: Dataset = { ...dataset, deleted: true };
  const at = index.datasetPositions.get(datasetId)!;
  return { desired: { ...desired, datasets: replaceAt(desired.datasets, at, deleted) }, dataset: deleted };
}

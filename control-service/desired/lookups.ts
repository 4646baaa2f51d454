/** Finding one entry of the desired configuration, or the API's 404. */
import { DroverError } from '#common/errors.ts';
import type { Application, Dataset, Desired, Migration, Node } from '#common/model.ts';
import { indexOf } from './desired-index.ts';

export function findDataset(desired: Desired, datasetId: string): Dataset {
  const dataset = indexOf(desired).datasets.get(datasetId);
  if (!dataset) throw new DroverError('DROVER_DATASET_NOT_FOUND', 'Dataset not found.', { detail: { dataset_id: datasetId } });
  return dataset;
}

export function findApplication(desired: Desired, name: string): Application {
  const app = indexOf(desired).applications.get(name);
  if (!app) throw new DroverError('DROVER_CONTAINER_NOT_FOUND', 'Container not found.', { detail: { name } });
  return app;
}

export function findNode(desired: Desired, uuid: string): Node {
  const node = indexOf(desired).nodes.get(uuid);
  if (!node) throw new DroverError('DROVER_NODE_NOT_FOUND', `No node ${uuid} has registered with the control service.`, { detail: { node_uuid: uuid } });
  return node;
}

export function findMigration(desired: Desired, id: string): Migration {
  const migration = indexOf(desired).migrations.get(id);
  if (!migration) throw new DroverError('DROVER_MIGRATION_NOT_FOUND', 'Migration not found.', { detail: { id } });
  return migration;
}

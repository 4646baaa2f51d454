/**
 * Application (container) changes to the desired configuration (Flocker's
 * `/v1/configuration/containers`), as pure functions. Flocker's rules and status codes:
 * a name is unique, an external port is used once in the cluster, link aliases and local
 * ports are unique per container, a volume's dataset exists, is on the container's node and
 * is used by no other container.
 */
import { DroverError } from '#common/errors.ts';
import { isTerminal } from '#common/migration-protocol.ts';
import type { Application, Desired, Migration } from '#common/model.ts';
import { UNPLACED_PRIMARY, externalKey } from '#common/model.ts';
import { indexOf, replaceAt } from './desired-index.ts';
import { assertNotLeasedAway } from './leases.ts';
import { findApplication, findDataset, findNode } from './lookups.ts';
import { abandonMigration, mayAbandon, startMigration, type MigrationStart } from './migrations.ts';

export function createApplication(desired: Desired, app: Application): Desired {
  const index = indexOf(desired);
  if (index.applications.has(app.name)) {
    throw new DroverError('DROVER_CONTAINER_NAME_IN_USE', 'The container name already exists.', { detail: { name: app.name } });
  }
  for (const port of app.ports) {
    const holder = index.applicationByExternalPort.get(externalKey(port));
    if (holder) {
      throw new DroverError('DROVER_PORT_IN_USE', `A specified external port is already in use (port ${port.external}, by "${holder.name}").`, {
        detail: { external: port.external, application: holder.name },
      });
    }
  }
  assertLinksUnique(app);
  for (const volume of app.volumes) {
    const dataset = findDataset(desired, volume.dataset_id);
    if (dataset.deleted) throw new DroverError('DROVER_DATASET_DELETED', 'The dataset has been deleted.', { detail: { dataset_id: dataset.dataset_id } });
    if (app.node_uuid !== undefined && dataset.primary !== app.node_uuid && dataset.primary !== UNPLACED_PRIMARY) {
      throw new DroverError('DROVER_DATASET_ON_OTHER_NODE', 'The dataset is on another node.', {
        detail: { dataset_id: dataset.dataset_id, primary: dataset.primary, node_uuid: app.node_uuid },
      });
    }
    const user = index.applicationByDataset.get(volume.dataset_id);
    if (user) {
      throw new DroverError('DROVER_DATASET_IN_USE', `The dataset is being used by another container ("${user.name}").`, {
        detail: { dataset_id: dataset.dataset_id, application: user.name },
      });
    }
  }
  return { ...desired, applications: [...desired.applications, app] };
}

/** Link aliases and local ports are unique within one container (Flocker's 409s). */
export function assertLinksUnique(app: Application): void {
  const aliases = new Set<string>();
  const ports = new Set<number>();
  for (const link of app.links) {
    if (aliases.has(link.alias)) throw new DroverError('DROVER_LINK_ALIAS_IN_USE', 'Link aliases must be unique.', { detail: { alias: link.alias } });
    if (ports.has(link.local_port)) {
      throw new DroverError('DROVER_LINK_PORT_IN_USE', "The local ports in a container's links must be unique.", { detail: { local_port: link.local_port } });
    }
    aliases.add(link.alias);
    ports.add(link.local_port);
  }
}

/**
 * Removes an application; its datasets stay (Flocker's rule). Refused while it is moving,
 * unless the move has not started yet (then the move is marked failed).
 */
export function deleteApplication(desired: Desired, name: string, now: number): Desired {
  const app = findApplication(desired, name);
  const index = indexOf(desired);
  let out = desired;
  const moving = index.activeMigrations.byApplication.get(name);
  if (moving) {
    if (!mayAbandon(moving)) {
      throw new DroverError('DROVER_MIGRATION_ACTIVE', `The container is moving (migration ${moving.id}, ${moving.phase}); delete it when the move ends.`, {
        detail: { name, migration: moving.id },
      });
    }
    out = abandonMigration(out, moving, 'the application was deleted', now);
  }
  return { ...out, applications: out.applications.filter((a) => a !== app) };
}

/**
 * Moves an application, with its datasets and their data, to node `to`: a migration the
 * agents run; `node_uuid` changes at handoff. Moving an application to where it is, or to
 * where it is already moving, changes nothing.
 * @throws DROVER_CONTAINER_NOT_FOUND, DROVER_NODE_NOT_FOUND (404); DROVER_MIGRATION_ACTIVE,
 *   DROVER_LEASE_HELD (409).
 */
export function moveApplication(desired: Desired, name: string, to: string, start: MigrationStart): { desired: Desired; application: Application; migration: Migration | null } {
  const app = findApplication(desired, name);
  findNode(desired, to);
  const index = indexOf(desired);
  const active = index.activeMigrations.byApplication.get(name);
  if (active) {
    if (active.to === to) return { desired, application: app, migration: active };
    throw new DroverError('DROVER_MIGRATION_ACTIVE', `The container is already moving to node ${active.to} (migration ${active.id}, ${active.phase}).`, {
      detail: { name, migration: active.id },
    });
  }
  if (app.node_uuid === to) return { desired, application: app, migration: null };
  const datasetIds = app.volumes.map((v) => v.dataset_id);
  for (const id of datasetIds) {
    const other = index.activeMigrations.byDataset.get(id);
    if (other && !isTerminal(other.phase)) {
      throw new DroverError('DROVER_MIGRATION_ACTIVE', `Dataset ${id} is moving (migration ${other.id}, ${other.phase}).`, { detail: { dataset_id: id, migration: other.id } });
    }
  }
  assertNotLeasedAway(desired, datasetIds, to, start.now);
  const from = app.node_uuid ?? UNPLACED_PRIMARY;
  const moved = startMigration(desired, { application: name, datasetIds, from, to }, start);
  const application = indexOf(moved.desired).applications.get(name)!;
  return { desired: moved.desired, application, migration: moved.migration };
}

/** Replaces one application by name (used by the scheduler's placements). */
export function replaceApplication(desired: Desired, app: Application): Desired {
  const at = indexOf(desired).applicationPositions.get(app.name);
  if (at === undefined) return desired;
  return { ...desired, applications: replaceAt(desired.applications, at, app) };
}

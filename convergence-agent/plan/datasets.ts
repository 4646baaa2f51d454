/**
 * The dataset half of the plan (pure): one step per dataset per pass.
 *
 * - primary here, absent: create it with its size limit — unless a migration is bringing it
 *   here (then its data is on the way and an empty dataset would be wrong);
 * - primary here, present: writable, then mounted, then the right size;
 * - primary elsewhere, present: read-only (a replica), once no running container uses it;
 * - tombstone (`deleted: true`), present: destroy, once no container uses it and no lease holds it;
 * - not in the desired configuration at all: left alone (unknown is not empty).
 */
import type { AgentDesired } from '#common/channel.ts';
import type { ZfsDatasetInfo } from '../zfs/types.ts';
import type { Blocked, Change, LocalContainer, PlanContext } from './types.ts';

export interface DatasetPlanInput {
  desired: AgentDesired;
  datasets: ZfsDatasetInfo[];
  /** null when docker could not be listed: nothing that needs "not in use" may happen. */
  containers: LocalContainer[] | null;
  /** Datasets a migration owns this pass; the dataset planner leaves them to it. */
  claimed: ReadonlySet<string>;
  /** Datasets some migration is bringing to this node. */
  arriving: ReadonlySet<string>;
  ctx: PlanContext;
}

export function planDatasets(input: DatasetPlanInput): { changes: Change[]; blocked: Blocked[] } {
  const { desired, ctx } = input;
  const changes: Change[] = [];
  const blocked: Blocked[] = [];
  const present = new Map(input.datasets.map((d) => [d.datasetId, d]));

  for (const dataset of desired.datasets) {
    const id = dataset.dataset_id;
    const subject = `dataset:${id}`;
    const here = present.get(id);
    if (input.claimed.has(id)) continue;

    if (dataset.deleted) {
      if (!here) continue;
      const lease = desired.leases.find((l) => l.dataset_id === id && (l.expires_at === null || l.expires_at > ctx.now));
      const users = usersOf(here, input.containers, false);
      if (lease) blocked.push({ subject, reason: `deleted, but leased to node ${lease.node_uuid}` });
      else if (users === null) blocked.push({ subject, reason: 'deleted, but containers are unknown this pass' });
      else if (users.length > 0) blocked.push({ subject, reason: `deleted, but used by ${users.join(', ')}` });
      else changes.push({ kind: 'destroy-dataset', datasetId: id });
      continue;
    }

    if (dataset.primary === ctx.nodeUuid) {
      if (!here) {
        if (input.arriving.has(id)) blocked.push({ subject, reason: 'waiting for its data from a migration' });
        else changes.push({ kind: 'create-dataset', datasetId: id, maximumSize: dataset.maximum_size });
      } else if (here.readonly) {
        changes.push({ kind: 'set-dataset-readonly', datasetId: id, readonly: false, ...(here.mounted ? {} : { mount: true as const }) });
      } else if (!here.mounted) {
        changes.push({ kind: 'mount-dataset', datasetId: id });
      } else if (here.refquota !== dataset.maximum_size) {
        changes.push({ kind: 'set-dataset-size', datasetId: id, maximumSize: dataset.maximum_size });
      }
      continue;
    }

    // Primary elsewhere: a copy here is a replica and must not be writable.
    if (here && !here.readonly) {
      const users = usersOf(here, input.containers, true);
      if (users === null) blocked.push({ subject, reason: 'not primary here, but containers are unknown this pass' });
      else if (users.length > 0) blocked.push({ subject, reason: `not primary here, but used by running ${users.join(', ')}` });
      else changes.push({ kind: 'set-dataset-readonly', datasetId: id, readonly: true });
    }
  }
  return { changes, blocked };
}

/** Names of containers that bind-mount `dataset`; null when containers are unknown. */
export function usersOf(dataset: ZfsDatasetInfo, containers: LocalContainer[] | null, runningOnly: boolean): string[] | null {
  if (containers === null) return null;
  const path = dataset.mountpoint;
  if (path === null) return [];
  return containers
    .filter((c) => (!runningOnly || c.running) && c.mountSources.some((s) => s === path || s.startsWith(`${path}/`)))
    .map((c) => c.name);
}

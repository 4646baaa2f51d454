/**
 * The dataset half of the plan (pure): one step per dataset per pass.
 *
 * - primary here, absent: create it with its size limit — unless a migration is bringing it
 *   here (then its data is on the way and an empty dataset would be wrong);
 * - primary here, present: writable, then mounted, then the right size; a replica promoted by a
 *   failover is first rolled back to its newest received snapshot (docs/DESIGN.md §18);
 * - primary elsewhere, present: read-only (a replica), once no running container uses it;
 * - tombstone (`deleted: true`), present: destroy, once no container uses it and no lease holds it;
 * - not in the desired configuration at all: left alone (unknown is not empty).
 */
import type { AgentDesired } from '#common/channel.ts';
import type { ZfsDatasetInfo, ZfsSnapshotInfo } from '../zfs/types.ts';
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
  /** dataset_id → its snapshots here; null when unknown this pass. */
  snapshots?: Record<string, ZfsSnapshotInfo[]> | null;
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
      } else if (here.readonly && promotedHere(desired, id, here, ctx)) {
        // A replica promoted by a failover: back to its newest received snapshot before it becomes
        // writable, so nothing but what the old primary sent is served (a receive cut short by the
        // failure leaves nothing behind on zfs, but this makes it so whatever the filesystem holds).
        // Not before every proxy holds the route (docs/DESIGN.md §18 "The route hold").
        const newest = input.snapshots === null || input.snapshots === undefined ? null : newestOf(input.snapshots[id] ?? []);
        if (routeNotHeld(desired, id, ctx)) blocked.push({ subject, reason: 'promoted by a failover; waiting for the proxies to hold its route' });
        else if (newest === null) blocked.push({ subject, reason: input.snapshots ? 'promoted by a failover, but it holds no snapshot to start from' : 'promoted by a failover, but its snapshots are unknown this pass' });
        else changes.push({ kind: 'set-dataset-readonly', datasetId: id, readonly: false, mount: true, rollbackTo: newest });
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

/**
 * Whether `id` here is a replica a failover just promoted: a failover record in the view names
 * this node as the chosen one, the application is not ready there yet, and the copy is still
 * read-only and unmounted as replicas are. A promoted copy that already served (mounted; or the
 * record says ready) is never rolled back: its writes since are live data.
 * XXX: a copy fenced read-only and unmounted by a host restart within the seconds between the
 * promotion and `ready_at` would be rolled back; the window is that short.
 */
function promotedHere(desired: AgentDesired, id: string, here: ZfsDatasetInfo, ctx: PlanContext): boolean {
  if (here.mounted) return false;
  return desired.migrations.some((m) => m.failover !== undefined && m.to === ctx.nodeUuid && m.dataset_ids.includes(id) && m.failover.ready_at === null);
}

/** Whether the failover promoting `id` here still waits for its route hold (`routes_held_at` null; absent in older records: no wait). */
function routeNotHeld(desired: AgentDesired, id: string, ctx: PlanContext): boolean {
  return desired.migrations.some((m) => m.failover !== undefined && m.to === ctx.nodeUuid && m.dataset_ids.includes(id) && m.failover.ready_at === null && m.failover.routes_held_at === null);
}

function newestOf(snapshots: readonly ZfsSnapshotInfo[]): string | null {
  let best: ZfsSnapshotInfo | null = null;
  for (const s of snapshots) if (best === null || s.createtxg > best.createtxg) best = s;
  return best?.snapshot ?? null;
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

/**
 * The rejoin copy-aside (docs/DESIGN.md §18 "A node that comes back"). A failover record that
 * names this node as the failed one (`from`) stays in its view until the node reports the copy
 * it kept. While it does, each of the record's datasets still under `<pool>/drover/` here is
 * moved aside to `<pool>/drover-diverged/<id>-g<generation>` before anything else touches it:
 * its writes after the promoted snapshot must not be rolled back or overwritten by a reseed.
 * A copy that holds nothing written after the promoted snapshot is not set aside whole: the
 * executor decides that with zfs (`DatasetStore.rejoin`), puts it back at that snapshot (the later,
 * empty snapshots kept aside) and marks it, and it becomes a replica of the new primary; the mark
 * ends the planning here like a kept copy, and is cleared once the record left the view.
 * Never destroys data. Pure.
 *
 * Not while a container here still runs an application mounting the dataset (its stop and
 * removal are planned by the containers' planner; the next pass moves the copy), nor while
 * this node is the dataset's primary again (an operator moved it back: it is live data), nor
 * when the kept copies could not be listed (unknown is not none).
 */
import type { AgentDesired } from '#common/channel.ts';
import type { Change, LocalObserved, PlanContext } from './types.ts';

export function planSetAside(desired: AgentDesired, observed: LocalObserved, ctx: PlanContext): Change[] {
  if (observed.datasets === null || observed.containers === null || observed.diverged == null) return [];
  const here = new Set(observed.datasets.map((d) => d.datasetId));
  const kept = new Set(observed.diverged.map((c) => `${c.datasetId}-g${c.generation}`));
  const changes: Change[] = [];
  const planned = new Set<string>();
  for (const m of desired.migrations) {
    if (m.failover === undefined || m.from !== ctx.nodeUuid) continue;
    for (const id of m.dataset_ids) {
      if (planned.has(id) || !here.has(id) || kept.has(`${id}-g${m.generation}`)) continue;
      if (desired.datasets.find((d) => d.dataset_id === id)?.primary === ctx.nodeUuid) continue;
      const users = new Set(desired.applications.filter((a) => a.volumes.some((v) => v.dataset_id === id)).map((a) => a.name));
      if (observed.containers.some((c) => c.running && users.has(c.app))) continue;
      planned.add(id);
      const promoted = m.failover.snapshots.find((s) => s.dataset_id === id)?.snapshot ?? null;
      changes.push({ kind: 'set-aside-diverged', datasetId: id, generation: m.generation, ...(promoted === null ? {} : { promoted }) });
    }
  }
  // A copy that rejoined in place is an ordinary replica once its failover left this node's view
  // (the control service recorded the rejoin): the mark has done its work.
  for (const c of observed.diverged) {
    if (c.rejoined !== true || planned.has(c.datasetId) || !here.has(c.datasetId)) continue;
    if (desired.migrations.some((m) => m.failover !== undefined && m.from === ctx.nodeUuid && m.generation === c.generation && m.dataset_ids.includes(c.datasetId))) continue;
    planned.add(c.datasetId);
    changes.push({ kind: 'clear-rejoined-mark', datasetId: c.datasetId });
  }
  return changes;
}

/**
 * Writes the scheduler's decisions into the desired configuration: a placed application
 * gets its `node_uuid` (and its not-yet-placed datasets their `primary`); an application
 * whose node no longer fits starts a migration. A move the rules refuse (a lease, say)
 * is not made; its reason joins the unschedulable ones.
 */
import { isDroverError } from '#common/errors.ts';
import type { Desired } from '#common/model.ts';
import { UNPLACED_PRIMARY } from '#common/model.ts';
import type { ScheduleResult } from '../scheduler/schedule.ts';
import { moveApplication, replaceApplication } from './applications.ts';
import { indexOf, replaceAt } from './desired-index.ts';
import type { MigrationStart } from './migrations.ts';

export function applySchedule(desired: Desired, result: ScheduleResult, start: MigrationStart): { desired: Desired; unschedulable: Map<string, string> } {
  let out = desired;
  const unschedulable = new Map(result.unschedulable);
  for (const [name, node] of result.place) {
    const app = indexOf(out).applications.get(name);
    if (!app || app.node_uuid !== undefined) continue;
    out = replaceApplication(out, { ...app, node_uuid: node });
    for (const v of app.volumes) {
      const at = indexOf(out).datasetPositions.get(v.dataset_id);
      const dataset = at === undefined ? undefined : out.datasets[at];
      if (at !== undefined && dataset && dataset.primary === UNPLACED_PRIMARY) out = { ...out, datasets: replaceAt(out.datasets, at, { ...dataset, primary: node }) };
    }
  }
  for (const [name, node] of result.move) {
    try {
      out = moveApplication(out, name, node, start).desired;
    } catch (err) {
      if (!isDroverError(err)) throw err;
      unschedulable.set(name, `should move to node ${node}, but ${err.message}`);
    }
  }
  return { desired: out, unschedulable };
}

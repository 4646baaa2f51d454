/**
 * A deploy plan (common/deploy planDeploy) says where each application runs; when that is a
 * different node than before, the plan flips `node_uuid` and the datasets' `primary`. The
 * control service never flips a placement directly (the data would be left behind): this
 * turns each flip back into the old placement plus a migration to the new node.
 */
import type { Desired, Migration } from '#common/model.ts';
import { moveApplication, replaceApplication } from './applications.ts';
import { indexOf, replaceAt } from './desired-index.ts';
import type { MigrationStart } from './migrations.ts';

export function movesToMigrations(before: Desired, planned: Desired, start: MigrationStart): { desired: Desired; migrations: Migration[] } {
  const old = indexOf(before);
  let out = planned;
  const migrations: Migration[] = [];
  for (const app of planned.applications) {
    const was = old.applications.get(app.name)?.node_uuid;
    if (was === undefined || app.node_uuid === undefined || was === app.node_uuid) continue;
    out = replaceApplication(out, { ...app, node_uuid: was });
    for (const v of app.volumes) {
      const previous = old.datasets.get(v.dataset_id);
      const at = indexOf(out).datasetPositions.get(v.dataset_id);
      if (previous === undefined || at === undefined) continue;
      const dataset = out.datasets[at]!;
      if (dataset.primary !== previous.primary) out = { ...out, datasets: replaceAt(out.datasets, at, { ...dataset, primary: previous.primary }) };
    }
    const moved = moveApplication(out, app.name, app.node_uuid, start);
    out = moved.desired;
    if (moved.migration) migrations.push(moved.migration);
  }
  return { desired: out, migrations };
}

/**
 * Correlation ids of this node's changes (docs/DESIGN.md §25): which migration or failover a
 * change about a dataset or a container works for, read from the records in the agent's view.
 * The executor puts the id in the change's log records as `corr`, so that `grep <id>` over
 * every process's log tells the whole story of a move or a failover. Pure.
 *
 * A record names its subjects: `dataset:<id>` for each of its datasets and
 * `container:drover-<app>` for its application. It lends them its id while it is in progress
 * for this node:
 * - a move: while it is in the view (the view holds a node's unfinished migrations);
 * - a failover, on the chosen node (`to`): until the application ran there (`ready_at`) —
 *   the rollback, the make-writable and mount, the container start;
 * - a failover, on the failed node (`from`) when it comes back: for each dataset until the
 *   control service recorded the copy it kept aside or rejoined — the container's stop and
 *   removal, the set-aside or rejoin, the copy made read-only; never a dataset or application
 *   placed on that node again since (a stateless application's record stays in its view).
 * Where two records name one subject, the one with the higher generation (the newer) wins.
 *
 * A single application's update (docs/DESIGN.md §30) lends its id (`update_hold.id`) to the
 * application's container on this node while the hold lasts: the stop, removal and start of
 * the replacement; a migration naming the same container wins over it.
 */
import type { AgentDesired } from '#common/channel.ts';
import { updateHolding, type Migration } from '#common/model.ts';
import { containerName } from './labels.ts';
import { changeSubject, type Change } from './types.ts';

/** Subject (`dataset:<id>`, `container:<name>`) → the id of the record its changes work for. */
export type Correlations = ReadonlyMap<string, string>;

/** The correlation ids the records in `desired` lend to this node's subjects. Pure. */
export function correlations(desired: AgentDesired | null, nodeUuid: string): Correlations {
  const out = new Map<string, string>();
  if (desired === null) return out;
  for (const app of desired.applications) {
    if (updateHolding(app.update_hold) && app.node_uuid === nodeUuid) out.set(`container:${containerName(app.name)}`, app.update_hold.id);
  }
  const records = [...desired.migrations].sort((a, b) => a.generation - b.generation);
  for (const m of records) {
    for (const subject of subjectsOf(m, nodeUuid, desired)) out.set(subject, m.id);
  }
  return out;
}

/** The correlation id of one change: its own migration's, else the one its subject is lent; null for an ordinary change. Pure. */
export function corrOf(change: Change, lent: Correlations = new Map()): string | null {
  if (change.kind === 'run-migration') return change.migration.id;
  if (change.kind === 'post-migration-update') return change.migrationId;
  return lent.get(changeSubject(change)) ?? null;
}

function subjectsOf(m: Migration, node: string, desired: AgentDesired): string[] {
  const app = m.application === null ? [] : [`container:${containerName(m.application)}`];
  const datasets = (ids: readonly string[]) => ids.map((id) => `dataset:${id}`);
  const info = m.failover;
  if (info === undefined) {
    if (m.from !== node && m.to !== node) return [];
    return m.phase === 'done' || m.phase === 'failed' ? [] : [...datasets(m.dataset_ids), ...app];
  }
  const out: string[] = [];
  if (m.to === node && info.ready_at === null) out.push(...datasets(m.dataset_ids), ...app);
  if (m.from === node) {
    // What the failed node undoes: not a dataset or application an operator has placed here again since.
    const settled = (id: string) =>
      info.diverged.some((c) => c.node_uuid === node && c.dataset_id === id) || info.rejoined.some((c) => c.node_uuid === node && c.dataset_id === id) || desired.datasets.some((d) => d.dataset_id === id && d.primary === node);
    const open = m.dataset_ids.filter((id) => !settled(id));
    const back = desired.applications.some((a) => a.name === m.application && a.node_uuid === node);
    // Its application's container goes with the copies still to set aside (or alone, without datasets).
    out.push(...datasets(open));
    if (!back && (open.length > 0 || m.dataset_ids.length === 0)) out.push(...app);
  }
  return out;
}

/**
 * EXTENSION POINT for issue 5 item 5 (migration/DESIGN.md): the migration half of the plan.
 *
 * Today it only keeps the rest of the planner out of a migration's way:
 * - `claimedDatasets` / `claimedApps`: while a migration is in `pre-copy` or `cutover`, the
 *   datasets and the application it moves belong to the migration steps, on both nodes; the
 *   dataset and container planners leave them alone;
 * - `arriving`: datasets a migration is bringing here; the dataset planner never creates an
 *   empty one in their place;
 * - `generations`: the fencing generation an application's container is labelled with.
 * From `handoff` on, the ordinary planners do the work (the target starts the application
 * once desired state names it primary).
 *
 * The protocol's own steps (`send-snapshot`, cutover, `post-migration-update`, abort) are
 * to be returned as `changes` here, added to the Change union in plan/types.ts, and executed
 * by execute.ts's switch. Pure, like the rest of plan/.
 *
 * How they should fit the loop: a pre-copy round can take minutes and must not hold up the
 * pass (other applications keep converging, health keeps being acted on). So a long step
 * should be *started* by the executor as a background job keyed by migration id (the
 * transfer engine's Replicator does the send), discovery should add the jobs' state
 * (running / finished with bytes and snapshot guid / failed) to LocalObserved, and this
 * planner should read it: start the next round, post the update, or wait. Short steps
 * (stop the application, set read-only, post `handoff`) are ordinary changes.
 */
import type { AgentDesired } from '#common/channel.ts';
import type { Migration } from '#common/model.ts';
import type { Blocked, Change, LocalObserved, PlanContext } from './types.ts';

export interface MigrationPlan {
  changes: Change[];
  blocked: Blocked[];
  claimedDatasets: Set<string>;
  claimedApps: Set<string>;
  arriving: Set<string>;
  generations: Map<string, number>;
}

const MOVING: ReadonlySet<Migration['phase']> = new Set(['pre-copy', 'cutover']);
const FINISHED: ReadonlySet<Migration['phase']> = new Set(['done', 'failed']);

export function planMigrations(desired: AgentDesired, _observed: LocalObserved, ctx: PlanContext): MigrationPlan {
  const plan: MigrationPlan = {
    changes: [],
    blocked: [],
    claimedDatasets: new Set(),
    claimedApps: new Set(),
    arriving: new Set(),
    generations: new Map(),
  };
  for (const m of desired.migrations) {
    if (m.application !== null) {
      plan.generations.set(m.application, Math.max(plan.generations.get(m.application) ?? 0, m.generation));
    }
    if (FINISHED.has(m.phase) || (m.from !== ctx.nodeUuid && m.to !== ctx.nodeUuid)) continue;
    if (m.to === ctx.nodeUuid && (m.phase === 'pending' || MOVING.has(m.phase))) {
      for (const id of m.dataset_ids) plan.arriving.add(id);
    }
    if (MOVING.has(m.phase)) {
      for (const id of m.dataset_ids) plan.claimedDatasets.add(id);
      if (m.application !== null) plan.claimedApps.add(m.application);
      // XXX: the migration steps are issue 5 item 5; until then a moving migration waits here.
      plan.blocked.push({ subject: `migration:${m.id}`, reason: `phase ${m.phase}: migration steps are not implemented by this agent yet` });
    }
  }
  return plan;
}

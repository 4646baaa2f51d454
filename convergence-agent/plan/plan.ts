/**
 * The planner (docs/DESIGN.md §4): desired configuration + what this node observed →
 * the changes to make this pass, what is blocked and why, and when to look again.
 *
 * Pure: no clock (`ctx.now` is an input), no I/O, no logging. Tested by equality.
 * One step per subject per pass; the caller executes, observes again and plans again.
 */
import type { AgentDesired } from '#common/channel.ts';
import { planContainers } from './containers.ts';
import { planDatasets } from './datasets.ts';
import { planSetAside } from './diverged.ts';
import { planMigrations } from './migrations.ts';
import { changeSubject, type Change, type LocalObserved, type PlanContext, type PlanResult } from './types.ts';

export function plan(desired: AgentDesired | null, observed: LocalObserved, ctx: PlanContext): PlanResult {
  if (desired === null || desired.node === null) {
    // Unknown is not empty: without a desired configuration that knows this node, do nothing.
    return {
      changes: [],
      blocked: [{ subject: `node:${ctx.nodeUuid}`, reason: 'no desired configuration for this node yet' }],
      recheckAfterMs: null,
    };
  }
  const migrations = planMigrations(desired, observed, ctx);
  // A failed node's stale copy goes aside first: one step per subject keeps any other change to it for later passes.
  const changes: Change[] = [...planSetAside(desired, observed, ctx), ...migrations.changes];
  const blocked = [...migrations.blocked];
  let recheckAfterMs: number | null = null;
  let updates: ReadonlyMap<string, string> = new Map();
  const readying = new Set<string>();

  if (observed.datasets !== null) {
    const datasets = planDatasets({
      desired,
      datasets: observed.datasets,
      containers: observed.containers,
      claimed: migrations.claimedDatasets,
      arriving: migrations.arriving,
      snapshots: observed.snapshots,
      ctx,
    });
    changes.push(...datasets.changes);
    blocked.push(...datasets.blocked);
    for (const c of datasets.changes) {
      if ((c.kind === 'set-dataset-readonly' && !c.readonly) || c.kind === 'mount-dataset') readying.add(c.datasetId);
    }
  } else {
    blocked.push({ subject: `node:${ctx.nodeUuid}`, reason: 'datasets could not be listed this pass' });
  }

  if (observed.containers !== null) {
    const containers = planContainers({
      desired,
      datasets: observed.datasets,
      containers: observed.containers,
      claimed: migrations.claimedApps,
      generations: migrations.generations,
      readying,
      ctx,
    });
    changes.push(...containers.changes);
    blocked.push(...containers.blocked);
    recheckAfterMs = containers.recheckAfterMs;
    updates = containers.updates;
  } else {
    blocked.push({ subject: `node:${ctx.nodeUuid}`, reason: 'containers could not be listed this pass' });
  }

  if (migrations.recheckAfterMs !== null) recheckAfterMs = Math.min(recheckAfterMs ?? Infinity, migrations.recheckAfterMs);
  const kept = ctx.fenced === true ? withoutFailoverStarts(desired, changes, blocked) : changes;
  const releases = migrations.releaseWhenHealthy.length > 0 ? { releaseWhenHealthy: migrations.releaseWhenHealthy } : {};
  return { changes: onePerSubject(kept), blocked, recheckAfterMs, ...releases, ...(updates.size > 0 ? { updates } : {}) };
}

/**
 * While fenced (docs/DESIGN.md §18): no failover-enabled application starts, restarts or
 * opens its gate, and none of their datasets is made writable or mounted, until the control
 * service confirmed this node's view. Everything else (stops, read-only) goes on.
 */
function withoutFailoverStarts(desired: AgentDesired, changes: Change[], blocked: PlanResult['blocked']): Change[] {
  const replicated = new Set(desired.datasets.filter((d) => (d.replication?.replicas ?? 0) >= 1).map((d) => d.dataset_id));
  // The fence's rule (fence.ts failoverEnabledIn): applications with data, every dataset replicated.
  const enabled = new Set(desired.applications.filter((a) => a.volumes.length > 0 && a.volumes.every((v) => replicated.has(v.dataset_id))).map((a) => a.name));
  const appOf = (name: string) => desired.applications.find((a) => `drover-${a.name}` === name)?.name ?? '';
  return changes.filter((c) => {
    let held = false;
    if (c.kind === 'start-container' || c.kind === 'prestart-container') held = enabled.has(c.spec.app);
    else if (c.kind === 'restart-container' || c.kind === 'open-container-gate') held = enabled.has(appOf(c.name));
    else if ((c.kind === 'set-dataset-readonly' && !c.readonly) || c.kind === 'mount-dataset') held = replicated.has(c.datasetId);
    if (held) blocked.push({ subject: changeSubject(c), reason: 'fenced: waiting for the control service to confirm this node is still primary' });
    return !held;
  });
}

/** Keeps the first change of each subject: one step per resource per pass. */
function onePerSubject(changes: Change[]): Change[] {
  const seen = new Set<string>();
  return changes.filter((c) => {
    const subject = changeSubject(c);
    if (seen.has(subject)) return false;
    seen.add(subject);
    return true;
  });
}

/**
 * The migration half of the plan (convergence-agent/migration/DESIGN.md). Pure.
 *
 * Source (`from` is this node), phases pending → pre-copy → cutover:
 * - the protocol runs as a background job (migration/source-job.ts), started by a
 *   `run-migration` change and observed through `observed.migrationJobs`; a job that ended
 *   without a verdict is started again after RERUN_AFTER_MS (it reads the record first, and
 *   aborts a cutover it finds);
 * - in pre-copy the application runs and is looked after as usual (a crash is restarted);
 * - from cutover on — in the desired view, *or* in the job's own stage, since the view can be
 *   older than the job's last post — the application and its datasets are claimed: the
 *   ordinary planners must not start A again or make D writable.
 *
 * Target (`to` is this node):
 * - before handoff the datasets are `arriving` (never created empty here) and stay read-only
 *   replicas by the ordinary rule; an application placed here with a migration to here not
 *   yet handed off is not started (fencing: desired state flips only at handoff);
 * - warm start (`ctx.warmStart`, gate/README.md): once the replicas are here, unmounted, the
 *   application's container is created and started before handoff with its first process
 *   behind a gate — so Docker's start is not part of the cutover. It cannot run the
 *   application or touch the data (the datasets are mounted only after handoff, and the gate
 *   opens only then, by the ordinary container planner); a failed migration removes it;
 * - after handoff the ordinary planners make the datasets writable, mount them and start A;
 *   once A is running (healthy, with a health check) — or, for datasets alone, every dataset
 *   is writable and mounted — this node posts `release`, then `done`.
 *
 * `generations`: the fencing generation an application's container is labelled with.
 */
import type { AgentDesired } from '#common/channel.ts';
import { HANDED_OFF_PHASES, isTerminal, SOURCE_PHASES } from '#common/migration-protocol.ts';
import type { Migration } from '#common/model.ts';
import { targetStep } from '../migration/phases.ts';
import type { Application } from '#common/model.ts';
import { containerSpec } from './container-spec.ts';
import { stopOrRemove } from './containers.ts';
import { usersOf } from './datasets.ts';
import { containerName } from './labels.ts';
import type { Blocked, Change, LocalObserved, MigrationJobState, PlanContext, ReleaseCandidate } from './types.ts';

export interface MigrationPlan {
  changes: Change[];
  blocked: Blocked[];
  claimedDatasets: Set<string>;
  claimedApps: Set<string>;
  arriving: Set<string>;
  generations: Map<string, number>;
  recheckAfterMs: number | null;
  releaseWhenHealthy: ReleaseCandidate[];
}

/** How soon the target looks again while a migration handed off to it is not released yet. */
export const HANDOFF_RECHECK_MS = 100;

/** How long after a job ended without a verdict the source starts a new one. */
export const RERUN_AFTER_MS = 5_000;

export function planMigrations(desired: AgentDesired, observed: LocalObserved, ctx: PlanContext): MigrationPlan {
  const plan: MigrationPlan = {
    changes: [],
    blocked: [],
    claimedDatasets: new Set(),
    claimedApps: new Set(),
    arriving: new Set(),
    generations: new Map(),
    recheckAfterMs: null,
    releaseWhenHealthy: [],
  };
  const jobs = new Map((observed.migrationJobs ?? []).map((j) => [j.migrationId, j]));
  for (const m of desired.migrations) {
    if (m.application !== null) {
      plan.generations.set(m.application, Math.max(plan.generations.get(m.application) ?? 0, m.generation));
    }
    if (m.from === ctx.nodeUuid && SOURCE_PHASES.has(m.phase)) planSource(plan, m, jobs.get(m.id), ctx);
    else if (m.to === ctx.nodeUuid) planTarget(plan, m, desired, observed, ctx);
  }
  return plan;
}

function planSource(plan: MigrationPlan, m: Migration, job: MigrationJobState | undefined, ctx: PlanContext): void {
  const subject = `migration:${m.id}`;
  const jobInCutover = job !== undefined && (job.stage === 'cutover' || job.stage === 'handed-off') && job.outcome !== 'aborted' && job.outcome !== 'failed';
  if (m.phase === 'cutover' || jobInCutover) {
    for (const id of m.dataset_ids) plan.claimedDatasets.add(id);
    if (m.application !== null) plan.claimedApps.add(m.application);
  }
  if (job === undefined) {
    plan.changes.push({ kind: 'run-migration', migration: m });
    return;
  }
  if (job.outcome === null) {
    plan.blocked.push({ subject, reason: `moving to node ${m.to}: ${job.stage}` });
    return;
  }
  if (job.outcome === 'stopped') {
    const wait = (job.endedAt ?? ctx.now) + RERUN_AFTER_MS - ctx.now;
    if (wait <= 0) {
      plan.changes.push({ kind: 'run-migration', migration: m });
      return;
    }
    plan.blocked.push({ subject, reason: `migration job stopped in ${job.stage}${job.error ? ` (${job.error})` : ''}; trying again in ${Math.ceil(wait / 1000)} s` });
    plan.recheckAfterMs = Math.min(plan.recheckAfterMs ?? Infinity, wait);
    return;
  }
  plan.blocked.push({ subject, reason: `migration job ended (${job.outcome}); waiting for the control service's view` });
}

function planTarget(plan: MigrationPlan, m: Migration, desired: AgentDesired, observed: LocalObserved, ctx: PlanContext): void {
  const subject = `migration:${m.id}`;
  if (isTerminal(m.phase)) return;
  if (!HANDED_OFF_PHASES.has(m.phase)) {
    for (const id of m.dataset_ids) plan.arriving.add(id);
    const app = m.application === null ? undefined : desired.applications.find((a) => a.name === m.application);
    if (app !== undefined && ctx.warmStart === true && planWarmStart(plan, m, app, observed, ctx)) return;
    if (app !== undefined && app.node_uuid === m.to) {
      // Desired state names this node before the migration handed off: never start early.
      plan.claimedApps.add(app.name);
      plan.blocked.push({ subject, reason: `application ${app.name} waits for handoff (phase ${m.phase})` });
    }
    return;
  }
  const ready = targetReady(m, desired, observed);
  const step = targetStep(m.phase, ready);
  // The application is stopped everywhere until it runs here: look again soon, not after the loop's backoff.
  plan.recheckAfterMs = Math.min(plan.recheckAfterMs ?? Infinity, HANDOFF_RECHECK_MS);
  if (step !== null) plan.changes.push({ kind: 'post-migration-update', migrationId: m.id, generation: m.generation, phase: step });
  else {
    plan.blocked.push({ subject, reason: `handed off here; waiting for ${m.application ?? 'the datasets'} to be ready` });
    const waiting = m.phase === 'handoff' ? awaitingHealth(m, desired, observed) : null;
    if (waiting !== null) plan.releaseWhenHealthy.push({ migrationId: m.id, generation: m.generation, containerId: waiting });
  }
}

/**
 * The container of a migration handed off here when all `targetReady` asks of it but its
 * health holds (running, of the migration's generation, its gate open or opening this pass):
 * the first passing health check is then the release. Null otherwise.
 */
function awaitingHealth(m: Migration, desired: AgentDesired, observed: LocalObserved): string | null {
  if (m.application === null) return null;
  const app = desired.applications.find((a) => a.name === m.application);
  const c = observed.containers?.find((x) => x.name === containerName(m.application!));
  if (!app?.health_check || !c || !c.running || c.generation < m.generation || app.node_uuid !== m.to) return null;
  return c.id;
}

/**
 * The warm start of `app` on this target before handoff. Returns false when it does not
 * apply (a volume outside the migration, a replica not here yet; the container then starts
 * after handoff, as without warm start). When it applies, the application is claimed: its
 * gated container is the migration's business until handoff, and any other container of
 * that name is taken away. A read-only replica mounted here (the copy an earlier stay left
 * behind, as when an application moves back) is unmounted first, once no container binds it.
 */
function planWarmStart(plan: MigrationPlan, m: Migration, app: Application, observed: LocalObserved, ctx: PlanContext): boolean {
  if (observed.containers === null || observed.datasets === null || app.volumes.length === 0) return false;
  const containers = observed.containers;
  const name = containerName(app.name);
  const existing = containers.find((c) => c.name === name);
  const ours = existing?.gate?.id === m.id;
  const mountpoints = new Map<string, string>();
  const unmount: string[] = [];
  for (const volume of app.volumes) {
    const here = observed.datasets.find((d) => d.datasetId === volume.dataset_id);
    if (!m.dataset_ids.includes(volume.dataset_id)) return false;
    if (!ours && (here === undefined || here.mountpoint === null)) return false;
    if (!ours && here!.mounted) {
      if (!here!.readonly || usersOf(here!, containers, false)!.length > 0) return false;
      unmount.push(volume.dataset_id);
    }
    if (here?.mountpoint) mountpoints.set(volume.dataset_id, here.mountpoint);
  }
  plan.claimedApps.add(app.name);
  const subject = `migration:${m.id}`;
  if (unmount.length > 0) {
    for (const datasetId of unmount) plan.changes.push({ kind: 'unmount-dataset', datasetId });
    return true;
  }
  if (existing !== undefined) {
    if (ours && existing.running && existing.gate!.state === 'closed') {
      plan.blocked.push({ subject, reason: `${name} started behind its gate; waits for handoff (phase ${m.phase})` });
    } else {
      plan.changes.push(stopOrRemove(existing, ours ? 'its gate is gone or it stopped' : 'a migration starts this application here'));
    }
    return true;
  }
  if ((app.files?.length ?? 0) > 0 && (ctx.filesRoot === undefined || ctx.secretsRoot === undefined)) {
    plan.blocked.push({ subject, reason: 'this agent keeps no files directory, so files that travel with the application cannot be written here' });
    return true;
  }
  const roots = { ...(ctx.filesRoot === undefined ? {} : { filesRoot: ctx.filesRoot }), ...(ctx.secretsRoot === undefined ? {} : { secretsRoot: ctx.secretsRoot }) };
  const spec = containerSpec(app, { nodeUuid: ctx.nodeUuid, address: ctx.address, ...(ctx.serviceSubnet !== undefined ? { serviceSubnet: ctx.serviceSubnet } : {}), generation: m.generation, mountpoints, ...roots });
  plan.changes.push({ kind: 'prestart-container', spec, gateId: m.id });
  return true;
}

/** A running (healthy, with a health check) container of the migration's generation; or every dataset writable and mounted. */
function targetReady(m: Migration, desired: AgentDesired, observed: LocalObserved): boolean {
  if (m.application !== null) {
    const app = desired.applications.find((a) => a.name === m.application);
    const c = observed.containers?.find((x) => x.name === containerName(m.application!));
    if (!app || !c || !c.running || c.generation < m.generation) return false;
    if (c.gate !== null && c.gate.state !== 'open') return false;
    return app.health_check === undefined || c.health === 'healthy';
  }
  if (observed.datasets === null) return false;
  return m.dataset_ids.every((id) => {
    const d = observed.datasets!.find((x) => x.datasetId === id);
    return d !== undefined && !d.readonly && d.mounted;
  });
}

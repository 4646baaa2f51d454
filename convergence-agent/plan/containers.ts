/**
 * The container half of the plan (pure): one step per container per pass.
 *
 * - desired here, absent: start it, once each of its datasets is present, mounted and
 *   writable here (a container waits for its data, as Flocker's did) — or becomes so by a
 *   dataset step planned in this same pass, which the executor runs first (`after`);
 * - desired here, spec changed (config hash): stop, then remove, then start again — during an
 *   update hold (docs/DESIGN.md §30) the stop waits until the control service recorded that
 *   every proxy holds the application's connections (`update_hold.held_at`), as a move's
 *   source waits for the proxies' acks;
 * - desired here, same spec: restart per drover's restart policy (crashed, unhealthy);
 * - desired here, gated (a migration's warm start, gate/README.md): open the gate once
 *   every dataset is writable and mounted here (or becomes so this pass); a gated container
 *   that stopped or lost its gate directory is removed and started afresh;
 * - not desired here (moved, or removed from the configuration): stop, then remove.
 *   The application's data is in its datasets, never in the container.
 */
import type { AgentDesired } from '#common/channel.ts';
import { updateHolding, type Application } from '#common/model.ts';
import type { ZfsDatasetInfo } from '../zfs/types.ts';
import { containerSpec } from './container-spec.ts';
import { containerName } from './labels.ts';
import { decideRestart } from './restart.ts';
import type { Blocked, Change, ContainerSpec, LocalContainer, PlanContext } from './types.ts';

export interface ContainerPlanInput {
  desired: AgentDesired;
  /** null when zfs could not be listed: nothing new starts, nothing is compared. */
  datasets: ZfsDatasetInfo[] | null;
  containers: LocalContainer[];
  /** Application names a migration owns this pass; left to it. */
  claimed: ReadonlySet<string>;
  /** app name → fencing generation the container is started under. */
  generations: ReadonlyMap<string, number>;
  /** Datasets this pass makes writable and mounted (the step planned for them by planDatasets). */
  readying?: ReadonlySet<string>;
  ctx: PlanContext;
}

export interface ContainerPlan {
  changes: Change[];
  blocked: Blocked[];
  recheckAfterMs: number | null;
  /** App name → the update (`update_hold.id`) whose spec its container here runs now: reported (ObservedContainer.update). */
  updates: Map<string, string>;
}

export function planContainers(input: ContainerPlanInput): ContainerPlan {
  const { desired, ctx } = input;
  const changes: Change[] = [];
  const blocked: Blocked[] = [];
  let recheckAfterMs: number | null = null;
  const byName = new Map(input.containers.map((c) => [c.name, c]));
  const wanted = new Set<string>();
  const updates = new Map<string, string>();

  for (const app of desired.applications) {
    if (app.node_uuid !== ctx.nodeUuid) continue;
    const name = containerName(app.name);
    wanted.add(name);
    if (input.claimed.has(app.name)) continue;
    const subject = `container:${name}`;
    const existing = byName.get(name);
    const spec = buildSpec(app, input);

    if (typeof spec === 'string') {
      blocked.push({ subject, reason: spec });
      continue;
    }
    if (!existing) {
      // depends_on (docs/DESIGN.md §22): a new container waits for what it depends on; one
      // that already runs is left alone when a dependency restarts, as in Compose.
      const waiting = unmetDependency(app, desired);
      if (waiting !== null) {
        blocked.push({ subject, reason: waiting });
        continue;
      }
      const after = readyingAfter(app, input);
      changes.push({ kind: 'start-container', spec, ...(after.length > 0 ? { after } : {}) });
      continue;
    }
    const hold = updateHolding(app.update_hold) ? app.update_hold : undefined;
    if (existing.configHash !== spec.configHash) {
      if (hold !== undefined && hold.held_at === null && existing.running) {
        blocked.push({ subject, reason: `configuration changed: waiting for every proxy to hold its connections before stopping it (update ${hold.id})` });
        continue;
      }
      changes.push(stopOrRemove(existing, 'configuration changed'));
      continue;
    }
    // Its container runs the update's spec (a new one, or one the change did not need to replace).
    if (hold !== undefined) updates.set(app.name, hold.id);
    if (existing.gate !== null && existing.gate.state !== 'open') {
      if (existing.gate.state === 'missing' || !existing.running) {
        changes.push(stopOrRemove(existing, 'its gate is gone'));
        continue;
      }
      const after = readyingAfter(app, input);
      changes.push({ kind: 'open-container-gate', name, containerId: existing.id, gateId: existing.gate.id, ...(after.length > 0 ? { after } : {}) });
      continue;
    }
    const decision = decideRestart(existing, app.restart_policy, ctx.now);
    if (decision.action === 'restart') {
      changes.push({
        kind: 'restart-container',
        name,
        containerId: existing.id,
        reason: decision.reason,
        consecutiveRestarts: decision.consecutiveRestarts,
      });
    } else if (decision.action === 'wait') {
      blocked.push({ subject, reason: decision.reason });
      recheckAfterMs = Math.min(recheckAfterMs ?? Infinity, decision.retryInMs);
    } else if (decision.reason !== null) {
      blocked.push({ subject, reason: decision.reason });
    }
  }

  for (const container of input.containers) {
    if (wanted.has(container.name) || input.claimed.has(container.app)) continue;
    changes.push(stopOrRemove(container, 'not desired on this node'));
  }
  return { changes, blocked, recheckAfterMs, updates };
}

/** The next step of taking a container away: stop it if it runs, else remove it (and its gate). */
export function stopOrRemove(container: LocalContainer, reason: string): Change {
  if (container.running) return { kind: 'stop-container', name: container.name, containerId: container.id, reason };
  return { kind: 'remove-container', name: container.name, containerId: container.id, ...(container.gate ? { gateId: container.gate.id } : {}) };
}

const CONDITION_WORDS = { service_started: 'started', service_healthy: 'healthy', service_completed_successfully: 'completed successfully' } as const;

/** Why `app` may not start yet (the first dependency not met), or null. */
export function unmetDependency(app: Application, desired: AgentDesired): string | null {
  for (const d of app.depends_on ?? []) {
    const state = desired.dependencies?.[d.application];
    const met = state !== undefined && (d.condition === 'service_started' ? state.started : d.condition === 'service_healthy' ? state.healthy : state.completed);
    if (!met) return `waiting for "${d.application}" to be ${CONDITION_WORDS[d.condition]} (depends_on: ${d.condition})`;
  }
  return null;
}

/** Subjects of the app's datasets made writable and mounted in this same pass. */
function readyingAfter(app: Application, input: ContainerPlanInput): string[] {
  return app.volumes.map((v) => v.dataset_id).filter((id) => input.readying?.has(id)).map((id) => `dataset:${id}`);
}

/** The spec of `app`, or why it cannot run here yet. */
function buildSpec(app: Application, input: ContainerPlanInput): ContainerSpec | string {
  const { desired, ctx } = input;
  if (app.volumes.length > 0 && input.datasets === null) return 'datasets are unknown this pass';
  const mountpoints = new Map<string, string>();
  for (const volume of app.volumes) {
    const id = volume.dataset_id;
    const want = desired.datasets.find((d) => d.dataset_id === id);
    if (!want) return `dataset ${id} is not in the configuration`;
    if (want.deleted) return `dataset ${id} is deleted`;
    if (want.primary !== ctx.nodeUuid) return `dataset ${id} is primary on node ${want.primary}`;
    const here = input.datasets?.find((d) => d.datasetId === id);
    if (!here) return `dataset ${id} is not present on this node yet`;
    if (here.mountpoint === null) return `dataset ${id} has no mountpoint`;
    if (!input.readying?.has(id)) {
      if (here.readonly) return `dataset ${id} is read-only here`;
      if (!here.mounted) return `dataset ${id} is not mounted`;
    }
    mountpoints.set(id, here.mountpoint);
  }
  if ((app.files?.length ?? 0) > 0 && (ctx.filesRoot === undefined || ctx.secretsRoot === undefined)) return 'this agent keeps no files directory, so files that travel with the application cannot be written here';
  return containerSpec(app, {
    nodeUuid: ctx.nodeUuid,
    address: ctx.address,
    ...(ctx.serviceSubnet !== undefined ? { serviceSubnet: ctx.serviceSubnet } : {}),
    generation: input.generations.get(app.name) ?? 0,
    mountpoints,
    ...(ctx.filesRoot === undefined ? {} : { filesRoot: ctx.filesRoot }),
    ...(ctx.secretsRoot === undefined ? {} : { secretsRoot: ctx.secretsRoot }),
  });
}

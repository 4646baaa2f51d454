/**
 * The scheduler: where applications without a node go. Pure (no clock, no I/O; randomness
 * is the `seed` input), so it is tested by equality.
 *
 * - An application without `node_uuid` is placed on an up node that satisfies its
 *   constraints, its affinity and anti-affinity, its memory, and its data (a dataset that
 *   already has a primary pins the application there); among those nodes its strategy
 *   chooses: spread (fewest applications, the default), binpack (most) or random.
 * - Placement is sticky: a placed application stays while its node satisfies its constraints.
 *   Only when the node no longer does (its labels changed) does the scheduler choose another
 *   node, and the application moves there with its data. Affinity, anti-affinity and memory
 *   are judged at placement only, so placing never cascades.
 * - A node that is not up (unknown, silent) is never chosen, and an application on such a
 *   node is left alone: unknown is not empty.
 * - A cordoned node (`Node.cordon`) is never chosen; what runs there stays. A draining one is
 *   emptied: its applications move off with their data like misfits, at most
 *   `DRAIN_CONCURRENCY` at a time per node (the next starts when one ends, at the next
 *   change); an application whose move off it failed since the drain began is not tried
 *   again until the operator drains again (a cancelled move stays cancelled).
 * - An application that cannot be placed gets a reason.
 */
import type { Application, Desired, Node } from '#common/model.ts';
import { UNPLACED_PRIMARY } from '#common/model.ts';
import { indexOf } from '../desired/desired-index.ts';
import { isReplicated } from '../desired/instances.ts';
import { parseConstraint, satisfies, type Constraint } from './constraints.ts';
import { formatBytes, nodeMemory } from './memory.ts';
import { chooseNode } from './strategy.ts';

export interface ScheduleInput {
  desired: Desired;
  /** Nodes reporting now. */
  up: ReadonlySet<string>;
  /** Seed of the random strategy. */
  seed: number;
}

export interface ScheduleResult {
  /** Applications without a node → the node chosen now. */
  place: Map<string, string>;
  /** Applications whose node no longer satisfies their constraints → where they move. */
  move: Map<string, string>;
  /** Applications left where they are (or nowhere), with the reason. */
  unschedulable: Map<string, string>;
}

/** How many applications a draining node sends away at once. */
export const DRAIN_CONCURRENCY = 2;

/** Why an application on a draining node is a misfit there. */
export const DRAINING = 'is being drained';

type Verdict = { ok: true } | { ok: false; reason: string; wait?: boolean };

export function schedule(input: ScheduleInput): ScheduleResult {
  const { desired } = input;
  const index = indexOf(desired);
  const result: ScheduleResult = { place: new Map(), move: new Map(), unschedulable: new Map() };
  const active = index.activeMigrations.byApplication;
  /** `misfit`: why the node it runs on no longer fits it; null for an application without a node. */
  const pending: { app: Application; misfit: string | null }[] = [];
  // Only these can need placing: an application on a node without rules stays (sticky).
  for (const app of index.unplacedOrRuled) {
    // Several instances are placed by scheduler/instances.ts, never with node_uuid.
    if (active.has(app.name) || isReplicated(app)) continue;
    if (app.node_uuid === undefined) pending.push({ app, misfit: null });
    else if (app.placement && input.up.has(app.node_uuid)) {
      const node = index.nodes.get(app.node_uuid);
      const unmet = node ? firstUnmet(app, node) : null;
      if (unmet !== null) pending.push({ app, misfit: unmet });
    }
  }
  for (const item of drainMoves(desired, active)) if (!pending.some((p) => p.app.name === item.app.name)) pending.push(item);
  if (pending.length === 0) return result;

  const candidates = desired.nodes.filter((n) => input.up.has(n.uuid) && n.cordon === undefined).sort((a, b) => (a.uuid < b.uuid ? -1 : 1));
  const nodeOf = new Map<string, string>();
  const count = new Map<string, number>();
  const memoryUsed = new Map<string, number>();
  const settle = (app: Application, node: string) => {
    nodeOf.set(app.name, node);
    count.set(node, (count.get(node) ?? 0) + 1);
    memoryUsed.set(node, (memoryUsed.get(node) ?? 0) + (app.memory_limit ?? 0));
  };
  for (const app of desired.applications) if (app.node_uuid !== undefined) settle(app, app.node_uuid);
  const avoidedBy = new Map<string, string[]>();
  for (const app of desired.applications) for (const other of app.placement?.anti_affinity ?? []) avoidedBy.set(other, [...(avoidedBy.get(other) ?? []), app.name]);

  const verdict = (app: Application, node: Node, misfit: boolean): Verdict => {
    if (misfit && node.uuid === app.node_uuid) return { ok: false, reason: 'it runs there now' };
    const unmet = firstUnmet(app, node);
    if (unmet !== null) return { ok: false, reason: unmet };
    if (!misfit) {
      for (const v of app.volumes) {
        const primary = index.datasets.get(v.dataset_id)?.primary;
        if (primary !== undefined && primary !== UNPLACED_PRIMARY && primary !== node.uuid) return { ok: false, reason: `its dataset ${v.dataset_id} is on node ${primary}` };
      }
    }
    for (const name of app.placement?.affinity ?? []) {
      if (!index.applications.has(name)) return { ok: false, reason: `affinity names no application "${name}"` };
      const there = nodeOf.get(name);
      if (there === undefined) return { ok: false, reason: `waits for application "${name}" (affinity) to be placed`, wait: true };
      if (there !== node.uuid) return { ok: false, reason: `application "${name}" (affinity) runs elsewhere` };
    }
    for (const name of [...(app.placement?.anti_affinity ?? []), ...(avoidedBy.get(app.name) ?? [])]) {
      if (nodeOf.get(name) === node.uuid) return { ok: false, reason: `application "${name}" (anti-affinity) runs there` };
    }
    const capacity = nodeMemory(node.labels);
    if (capacity !== null && app.memory_limit !== undefined && (memoryUsed.get(node.uuid) ?? 0) + app.memory_limit > capacity) {
      return { ok: false, reason: `not enough memory (needs ${formatBytes(app.memory_limit)})` };
    }
    return { ok: true };
  };

  let left = pending.sort((a, b) => (a.app.name < b.app.name ? -1 : 1));
  for (let pass = 0; pass <= pending.length && left.length > 0; pass++) {
    const still: typeof left = [];
    for (const item of left) {
      const fits: Node[] = [];
      const why = new Map<string, number>();
      let waiting = false;
      for (const node of candidates) {
        const v = verdict(item.app, node, item.misfit !== null);
        if (v.ok) fits.push(node);
        else {
          why.set(v.reason, (why.get(v.reason) ?? 0) + 1);
          waiting ||= v.wait === true;
        }
      }
      const chosen = chooseNode(item.app, fits, count, input.seed);
      if (chosen) {
        if (item.misfit === DRAINING) {
          result.move.set(item.app.name, chosen.uuid);
          // Several leave at once: spread them as they land.
          settle(item.app, chosen.uuid);
        } else if (item.misfit !== null) result.move.set(item.app.name, chosen.uuid);
        else {
          result.place.set(item.app.name, chosen.uuid);
          settle(item.app, chosen.uuid);
        }
        result.unschedulable.delete(item.app.name);
        continue;
      }
      result.unschedulable.set(item.app.name, explain(item, candidates.length, why, desired.nodes.some((n) => n.cordon !== undefined && input.up.has(n.uuid))));
      if (waiting) still.push(item);
    }
    if (still.length === left.length) break;
    left = still;
  }
  return result;
}

/**
 * The applications to move off draining nodes now: those on the node with no move of their
 * own, up to DRAIN_CONCURRENCY moves from the node at once, skipping any whose move off it
 * failed since the drain began. In name order, so the choice is stable.
 */
function drainMoves(desired: Desired, active: ReadonlyMap<string, unknown>): { app: Application; misfit: string }[] {
  const draining = desired.nodes.filter((n) => n.cordon?.drain === true);
  if (draining.length === 0) return [];
  const out: { app: Application; misfit: string }[] = [];
  for (const node of draining) {
    const since = node.cordon!.since;
    const failed = new Set(desired.migrations.filter((m) => m.from === node.uuid && m.phase === 'failed' && m.started_at >= since && m.application !== null).map((m) => m.application!));
    const moving = desired.migrations.filter((m) => m.from === node.uuid && m.phase !== 'failed' && m.phase !== 'done').length;
    const there = desired.applications.filter((a) => a.node_uuid === node.uuid && !active.has(a.name) && !failed.has(a.name)).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const app of there.slice(0, Math.max(0, DRAIN_CONCURRENCY - moving))) out.push({ app, misfit: DRAINING });
  }
  return out;
}

/** The first constraint of `app` that `node` does not meet, as a reason; null when all are met. */
export function firstUnmet(app: Application, node: Node): string | null {
  for (const text of app.placement?.constraints ?? []) {
    const constraint: Constraint | null = parseConstraint(text);
    if (!constraint) return `constraint "${text}" is not understood`;
    if (!satisfies(node, constraint)) return `fails "${constraint.text}"`;
  }
  return null;
}

function explain(item: { app: Application; misfit: string | null }, upCount: number, why: Map<string, number>, cordonedUp: boolean): string {
  if (upCount === 0) return cordonedUp ? 'no node is up that is not cordoned' : 'no node is up';
  const reasons = [...why]
    .filter(([reason]) => reason !== 'it runs there now')
    .map(([reason, n]) => `${reason} (${n} node${n === 1 ? '' : 's'})`)
    .join('; ');
  if (item.misfit === null) return `no node fits: ${reasons}`;
  const head = `its node ${item.app.node_uuid} ${item.misfit.replace(/^fails/, 'no longer satisfies')}, and no other node fits`;
  return reasons === '' ? head : `${head}: ${reasons}`;
}

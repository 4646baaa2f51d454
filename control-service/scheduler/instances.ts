/**
 * Placing and replacing the instances of applications that run several (docs/DESIGN.md §30).
 * Pure: observed state comes in as functions, time as `now`, randomness as `seed`.
 *
 * - `instances: N`: N live instances (not draining) on up nodes that satisfy the constraints,
 *   spread by default (fewest instances of the application, then fewest containers, then
 *   uuid), binpacked or random on request; at most one per node when the application names
 *   itself in `anti_affinity`. Scaling down drains the newest first.
 * - `mode: global`: one live instance on every up, uncordoned node that satisfies the
 *   constraints; nodes that join later get one, a node that stops matching is drained.
 * - An instance is never stopped at once: it is marked draining (out of every route from then
 *   on) and removed from the configuration only once `drained` says the proxies stopped
 *   sending it connections and its open ones had time to end; then its agent removes it.
 * - An instance on a node that is gone (silent past its lease, heard from since the control
 *   service started, or removed) is dropped and replaced elsewhere: it holds no data.
 * - A changed spec (a new revision) is rolled out `update_config.parallelism` instances at a
 *   time: stop-first drains old ones and places new ones; start-first places new ones first
 *   and drains as many old ones once those are ready. A batch waits for the previous one to
 *   be ready and for `delay_seconds`; a batch not ready within `monitor_seconds` pauses the
 *   rollout or rolls it back (the previous spec becomes current again and is rolled out).
 */
import type { Application, Desired, Instance, Node } from '#common/model.ts';
import { isReplicated, pruneRevisions, specOf } from '../desired/instances.ts';
import { firstUnmet } from './schedule.ts';

export interface InstanceInput {
  desired: Desired;
  /** Nodes reporting now. */
  up: ReadonlySet<string>;
  /** Nodes whose instances are replaced: silent past the lease (and heard from since start). */
  gone: (node: string) => boolean;
  now: number;
  /** The instance's container runs on its node (healthy, when the application has a health check). */
  ready: (app: string, instance: Instance) => boolean;
  /** A draining instance no proxy sends connections to any more, and whose open ones had their time. */
  drained: (app: string, instance: Instance) => boolean;
  seed: number;
}

export interface InstanceResult {
  desired: Desired;
  /** Applications with fewer instances than asked for, and why. */
  unschedulable: Map<string, string>;
}

const DEFAULT_UPDATE = { parallelism: 1, delay_seconds: 0, order: 'stop-first', failure_action: 'pause', monitor_seconds: 60 } as const;

export function planInstances(input: InstanceInput): InstanceResult {
  const { desired } = input;
  const unschedulable = new Map<string, string>();
  if (!desired.applications.some(isReplicated)) return { desired, unschedulable };
  const nodes = new Map(desired.nodes.map((n) => [n.uuid, n]));
  // Containers per node, for spread: single applications and every instance.
  const load = new Map<string, number>();
  for (const app of desired.applications) {
    if (app.node_uuid !== undefined) load.set(app.node_uuid, (load.get(app.node_uuid) ?? 0) + 1);
    for (const i of app.placed ?? []) load.set(i.node_uuid, (load.get(i.node_uuid) ?? 0) + 1);
  }
  let changed = false;
  const applications = desired.applications.map((app) => {
    if (!isReplicated(app)) return app;
    const next = planOne(app, input, nodes, load, unschedulable);
    if (next !== app) changed = true;
    return next;
  });
  return { desired: changed ? { ...desired, applications } : desired, unschedulable };
}

function planOne(app: Application, input: InstanceInput, nodes: ReadonlyMap<string, Node>, load: Map<string, number>, unschedulable: Map<string, string>): Application {
  const { now } = input;
  const rev = app.revision ?? 0;
  const update = { ...DEFAULT_UPDATE, ...app.update_config };
  let nextId = Math.max(app.next_instance ?? 1, ...(app.placed ?? []).map((i) => i.id + 1));
  let rollout = app.rollout;
  let spec: Application = app;
  // Drained instances leave; those on gone nodes are dropped (replaced below).
  let placed = (app.placed ?? []).filter((i) => nodes.has(i.node_uuid) && !input.gone(i.node_uuid) && !(i.draining_since !== undefined && input.drained(app.name, i)));
  const drain = (victims: readonly Instance[]) => {
    const ids = new Set(victims.map((v) => v.id));
    placed = placed.map((i) => (ids.has(i.id) && i.draining_since === undefined ? { ...i, draining_since: now } : i));
  };
  const live = () => placed.filter((i) => i.draining_since === undefined);
  const selfAvoid = app.placement?.anti_affinity.includes(app.name) === true;
  const eligible = (node: Node) => input.up.has(node.uuid) && node.cordon === undefined && firstUnmet(app, node) === null;
  // Misfits: a node that stopped satisfying the constraints, or is being drained by the operator.
  drain(live().filter((i) => {
    const node = nodes.get(i.node_uuid)!;
    return node.cordon?.drain === true || firstUnmet(app, node) !== null;
  }));
  const candidates = [...nodes.values()].filter(eligible).sort((a, b) => (a.uuid < b.uuid ? -1 : 1));
  const place = (revision: number, onNode?: string): boolean => {
    const mine = (uuid: string) => placed.filter((i) => i.node_uuid === uuid && (i.draining_since === undefined || selfAvoid)).length;
    const fits = onNode !== undefined ? candidates.filter((n) => n.uuid === onNode) : candidates.filter((n) => !selfAvoid || mine(n.uuid) === 0);
    const node = choose(app, fits, mine, load, input.seed + nextId);
    if (node === null) return false;
    placed = [...placed, { id: nextId++, node_uuid: node.uuid, revision }];
    load.set(node.uuid, (load.get(node.uuid) ?? 0) + 1);
    return true;
  };

  const rolling = rollout !== undefined && rollout.state !== 'paused' && live().some((i) => i.revision !== rev);
  if (rolling) {
    const fresh = live().filter((i) => i.revision === rev);
    const unready = fresh.filter((i) => !input.ready(app.name, i));
    const outdated = live().filter((i) => i.revision !== rev).sort((a, b) => a.id - b.id);
    if (unready.length > 0 && rollout!.last_step_at > 0 && now - rollout!.last_step_at > update.monitor_seconds * 1000) {
      const reason = `${unready.length} new instance(s) not ready within ${update.monitor_seconds} s`;
      if (update.failure_action === 'rollback' && rollout!.state === 'updating') {
        spec = rolledBack(app, rev);
        rollout = { state: 'rolled-back', last_step_at: now, reason };
      } else rollout = { state: 'paused', last_step_at: rollout!.last_step_at, reason };
    } else if (unready.length === 0 && now >= rollout!.last_step_at + update.delay_seconds * 1000) {
      const want = app.mode === 'global' ? new Set(live().map((i) => i.node_uuid)).size : (app.instances ?? 1);
      const batch = outdated.slice(0, update.parallelism);
      if (update.order === 'start-first') {
        const surplus = live().length - want;
        if (surplus > 0) drain(outdated.slice(0, surplus));
        else {
          for (const old of batch) place(rev, app.mode === 'global' ? old.node_uuid : undefined);
          rollout = { ...rollout!, last_step_at: now };
        }
      } else {
        drain(batch);
        rollout = { ...rollout!, last_step_at: now };
      }
    }
  }

  const current = spec.revision ?? 0;
  if (app.mode === 'global') {
    for (const node of candidates) if (!placed.some((i) => i.node_uuid === node.uuid && i.draining_since === undefined)) place(current, node.uuid);
    const seen = new Set<string>();
    // One per node: extras (newest first) drain, unless a start-first batch is replacing one there.
    const extras = live().sort((a, b) => b.id - a.id).filter((i) => {
      const first = !seen.has(i.node_uuid);
      seen.add(i.node_uuid);
      return !first && !(rolling && update.order === 'start-first');
    });
    drain(extras);
  } else {
    const want = app.instances ?? 1;
    const missing = want - live().length;
    let placedNow = 0;
    for (let k = 0; k < missing; k++) if (place(current)) placedNow++;
    if (placedNow < missing) unschedulable.set(app.name, `${live().length} of ${want} instances placed: ${why(app, [...nodes.values()], input.up, selfAvoid)}`);
    if (!rolling && live().length > want) drain(live().sort((a, b) => b.id - a.id).slice(0, live().length - want));
  }

  let out: Application = spec;
  if (!sameInstances(app.placed ?? [], placed)) out = { ...out, placed };
  if (nextId !== (app.next_instance ?? 1) && nextId > (app.next_instance ?? 1)) out = { ...out, next_instance: nextId };
  if (rollout !== app.rollout) out = rollout === undefined ? out : { ...out, rollout };
  out = pruneRevisions(out);
  return out;
}

/** The previous spec becomes current again (its revision number too); the failed one is kept while instances run it. */
function rolledBack(app: Application, rev: number): Application {
  const revisions = app.revisions ?? {};
  const previous = Math.max(...Object.keys(revisions).map(Number).filter((r) => r !== rev));
  const old = revisions[String(previous)];
  if (old === undefined || !Number.isFinite(previous)) return app;
  const { [String(previous)]: _taken, ...rest } = revisions;
  const scheduling = Object.fromEntries(Object.entries(app).filter(([k]) => !(k in specOf(app))));
  return { ...(old as Application), ...scheduling, revision: previous, revisions: { ...rest, [String(rev)]: specOf(app) } } as Application;
}

function choose(app: Application, fits: readonly Node[], mine: (node: string) => number, load: ReadonlyMap<string, number>, seed: number): Node | null {
  if (fits.length === 0) return null;
  const strategy = app.placement?.strategy ?? 'spread';
  if (strategy === 'random') return fits[Math.abs(Math.imul(seed, 2654435761)) % fits.length]!;
  let best = fits[0]!;
  for (const node of fits) {
    const [n, b] = [mine(node.uuid), mine(best.uuid)];
    if (strategy === 'binpack' ? n > b : n < b || (n === b && (load.get(node.uuid) ?? 0) < (load.get(best.uuid) ?? 0))) best = node;
  }
  return best;
}

function why(app: Application, nodes: readonly Node[], up: ReadonlySet<string>, selfAvoid: boolean): string {
  const reasons = new Map<string, number>();
  for (const node of nodes) {
    const reason = !up.has(node.uuid) ? 'not up' : node.cordon !== undefined ? 'cordoned' : (firstUnmet(app, node) ?? (selfAvoid ? `an instance runs there (anti-affinity "${app.name}")` : null));
    if (reason !== null) reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  if (nodes.length === 0) return 'no node is known';
  return [...reasons].map(([r, n]) => `${r} (${n} node${n === 1 ? '' : 's'})`).join('; ') || 'no node fits';
}

function sameInstances(a: readonly Instance[], b: readonly Instance[]): boolean {
  return a.length === b.length && a.every((x, i) => x.id === b[i]!.id && x.node_uuid === b[i]!.node_uuid && x.revision === b[i]!.revision && x.draining_since === b[i]!.draining_since);
}

/**
 * The update hold of a single application (docs/DESIGN.md §30 "Updating a single
 * application"): a write that changes what its container runs, on the node it stays on, holds
 * its routes as a move's cutover does — proxies accept new connections and keep them — until
 * its new container is ready. Pure functions of the desired configuration; `Control` applies
 * them in every write.
 *
 * The sequence, the move's own (proxy/DESIGN.md):
 * 1. the write sets `update_hold {id, started_at, held_at: null}`: the route holds
 *    (channel/route-table.ts) from that commit's table on;
 * 2. once every live proxy acknowledged that table, or `UPDATE_HOLD_ACK_MS` passed
 *    (cluster/failover-hold.ts, the failover's own wait), `held_at` is set;
 * 3. the node's agent stops the old container only when `held_at` is set
 *    (convergence-agent/plan/containers.ts), removes it and starts the new one, and reports
 *    the container as running the update's spec (`ObservedContainer.update`);
 * 4. the route forwards again as soon as that container is ready (running; healthy when it has
 *    a health check); the hold is then marked released — or at `started_at` + the deadline
 *    (the move's handoff deadline) whatever the container does. The released record stays
 *    until the next update or move: the route keeps its id as the correlation id.
 *
 * Only applications that have routes, run on one node (not several instances) and stay on it:
 * a move holds its own way, and instances roll.
 */
import { updateHolding, type Application, type Desired, type ObservedContainer, type UpdateHold } from '#common/model.ts';
import { isReplicated, specOf } from './instances.ts';

/**
 * How long the old container waits for the proxies' acknowledgements of the hold before it is
 * stopped anyway (the late ones named in `unacked` and the log): a move's source waits as long
 * by default (the agent's `migration.ack_wait_ms`), ms.
 */
export const UPDATE_HOLD_ACK_MS = 5_000;

export interface CarryContext {
  now: number;
  /** A fresh id for a new hold (a uuid: the update's correlation id). */
  newId: () => string;
}

/** An application whose port the proxies serve: published ports, or a name slot. */
function routed(app: Application): boolean {
  return app.ports.length > 0 || app.name_slot !== undefined;
}

function sameSpec(a: Application, b: Application): boolean {
  return JSON.stringify(specOf(a)) === JSON.stringify(specOf(b));
}

/**
 * The update holds of a write: a single application whose spec `after` changes on the node it
 * stays on gets a new hold; otherwise the one `before` had is kept (a write that gives none —
 * a redeploy, an API write — does not end it; one with the same id may advance it). Users
 * cannot set one: a hold they give that is not the current one is ignored. Pure; returns
 * `after` itself when nothing changes.
 */
export function carryUpdateHolds(before: Desired, after: Desired, ctx: CarryContext): Desired {
  if (before.applications === after.applications) return after;
  const old = new Map(before.applications.map((a) => [a.name, a]));
  let changed = false;
  const applications = after.applications.map((app) => {
    const next = carried(old.get(app.name), app, ctx);
    if (next !== app) changed = true;
    return next;
  });
  return changed ? { ...after, applications } : after;
}

function carried(prev: Application | undefined, app: Application, ctx: CarryContext): Application {
  if (prev === app) return app;
  const eligible = prev !== undefined && !isReplicated(app) && !isReplicated(prev) && routed(app) && app.node_uuid !== undefined && app.node_uuid === prev.node_uuid;
  if (!eligible) return withHold(app, undefined);
  if (!sameSpec(prev, app)) return withHold(app, { id: ctx.newId(), started_at: ctx.now, held_at: null });
  const current = prev.update_hold;
  if (current === undefined) return withHold(app, undefined);
  return withHold(app, app.update_hold?.id === current.id ? app.update_hold : current);
}

function withHold(app: Application, hold: UpdateHold | undefined): Application {
  if (hold === undefined) {
    if (app.update_hold === undefined) return app;
    const { update_hold: _h, ...rest } = app;
    return rest as Application;
  }
  return app.update_hold === hold ? app : { ...app, update_hold: hold };
}

/**
 * True when `seen` is the application's container running the update's spec and ready to
 * serve: running, and healthy when it has a health check. The route holds until then.
 */
export function updateReady(app: Application, seen: ObservedContainer | undefined): boolean {
  const hold = app.update_hold;
  if (hold === undefined || !updateHolding(hold)) return true;
  return seen !== undefined && seen.update === hold.id && seen.running && (app.health_check === undefined || seen.health === 'healthy');
}

export interface SettleContext {
  now: number;
  /** A hold older than this ends whatever the container does (the move's handoff deadline), ms. */
  deadlineMs: number;
  /** The application's container as its node last reported it (undefined: unknown, or not there). */
  seen: (app: Application) => ObservedContainer | undefined;
}

export interface Settled {
  application: string;
  id: string;
  why: 'ready' | 'deadline';
  heldForMs: number;
}

/**
 * The holds that end now: the new container is ready, or the deadline passed (logged by the
 * caller with the reason); each is kept, marked `released_at` and `ended`. Pure; `desired`
 * itself and no ends when nothing ends.
 */
export function settleUpdateHolds(desired: Desired, ctx: SettleContext): { desired: Desired; ended: Settled[] } {
  const ended: Settled[] = [];
  let changed = false;
  const applications = desired.applications.map((app) => {
    const hold = app.update_hold;
    if (hold === undefined || !updateHolding(hold)) return app;
    const ready = updateReady(app, ctx.seen(app));
    if (!ready && ctx.now - hold.started_at < ctx.deadlineMs) return app;
    const why = ready ? 'ready' : 'deadline';
    ended.push({ application: app.name, id: hold.id, why, heldForMs: Math.max(0, ctx.now - hold.started_at) });
    changed = true;
    return withHold(app, { ...hold, released_at: ctx.now, ended: why });
  });
  return changed ? { desired: { ...desired, applications }, ended } : { desired, ended };
}

/** `held_at` (and who had not acknowledged) set on the hold `id`; the same desired when it is gone or already held. Pure. */
export function markUpdateHeld(desired: Desired, id: string, heldAt: number, unacked: string[]): Desired {
  let changed = false;
  const applications = desired.applications.map((app) => {
    const hold = app.update_hold;
    if (hold?.id !== id || hold.held_at !== null || !updateHolding(hold)) return app;
    changed = true;
    return { ...app, update_hold: { ...hold, held_at: heldAt, ...(unacked.length > 0 ? { unacked } : {}) } };
  });
  return changed ? { ...desired, applications } : desired;
}

/** The holds still waiting for the proxies' acknowledgements: what cluster/failover-hold.ts follows. */
export function unheldUpdates(desired: Desired): { id: string; application: string }[] {
  const out: { id: string; application: string }[] = [];
  for (const app of desired.applications) if (updateHolding(app.update_hold) && app.update_hold.held_at === null) out.push({ id: app.update_hold.id, application: app.name });
  return out;
}

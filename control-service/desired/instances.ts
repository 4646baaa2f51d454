/**
 * Applications with several instances (docs/DESIGN.md §30), as pure functions of the desired
 * configuration: which applications are replicated, what an instance's container is made of,
 * and how a write carries instances and revisions over.
 *
 * An instance runs the application's spec — every field but the scheduling ones below — at
 * the revision it was placed with. A write that changes the spec raises `revision` and keeps
 * the spec it replaces in `revisions` while an instance still runs it; the scheduler
 * (scheduler/instances.ts) then replaces the old instances, a rolling update.
 */
import { DroverError } from '#common/errors.ts';
import { Application, type Desired, type Instance } from '#common/model.ts';
import { findApplication } from './lookups.ts';

/** Fields that say where and how many, not what runs: changing them starts no rolling update. */
const SCHEDULING_KEYS = new Set([
  'node_uuid',
  'pinned_node_uuid',
  'placement',
  'instances',
  'mode',
  'placed',
  'revision',
  'revisions',
  'next_instance',
  'update_config',
  'rollout',
  'update_hold',
  'move',
  'replication',
]);

/** True for an application that runs as instances (`instances` or `mode: global`), never with `node_uuid`. */
export function isReplicated(app: Application): boolean {
  return app.instances !== undefined || app.mode === 'global';
}

/** The container name's application part of instance `id`: `web.3` (the container is `drover-web.3`). */
export function instanceName(app: string, id: number): string {
  return `${app}.${id}`;
}

/** What an instance's container is made of: the application without its scheduling fields. */
export function specOf(app: Application): Record<string, unknown> {
  return Object.fromEntries(Object.entries(app).filter(([k]) => !SCHEDULING_KEYS.has(k)));
}

function sameSpec(a: Application, b: Application): boolean {
  return JSON.stringify(specOf(a)) === JSON.stringify(specOf(b));
}

const cache = new WeakMap<Application, Map<string, Application>>();

/**
 * The application an agent runs for one instance: the spec of the instance's revision, named
 * `<app>.<id>`, on the instance's node. An instance whose container ended is started again
 * whatever `restart` says (Swarm's replicated tasks are always replaced): a restart policy of
 * `never` becomes `always`. Cached per application object, so views compare by identity.
 */
export function instanceApplication(app: Application, instance: Instance): Application {
  let byKey = cache.get(app);
  if (byKey === undefined) {
    byKey = new Map();
    cache.set(app, byKey);
  }
  const key = `${instance.id}/${instance.node_uuid}/${instance.revision}`;
  let out = byKey.get(key);
  if (out === undefined) {
    const old = instance.revision !== (app.revision ?? 0) ? app.revisions?.[String(instance.revision)] : undefined;
    const spec = old ?? specOf(app);
    const parsed = Application.parse({ ...spec, name: instanceName(app.name, instance.id), node_uuid: instance.node_uuid });
    out = parsed.restart_policy.name === 'never' ? { ...parsed, restart_policy: { name: 'always' } } : parsed;
    byKey.set(key, out);
  }
  return out;
}

/**
 * A write's replicated applications with what the write did not give kept from `before`:
 * their instances, revision, older revisions and rollout. A changed spec raises the revision
 * and keeps the replaced spec while instances run it; a rollout starts (or restarts). Older
 * revisions no instance runs are dropped. Pure; returns `after` itself when nothing changes.
 */
export function carryInstances(before: Desired, after: Desired): Desired {
  if (before.applications === after.applications) return after;
  const old = new Map(before.applications.map((a) => [a.name, a]));
  let changed = false;
  const applications = after.applications.map((app) => {
    const next = carried(old.get(app.name), app);
    if (next !== app) changed = true;
    return next;
  });
  return changed ? { ...after, applications } : after;
}

function carried(prev: Application | undefined, app: Application): Application {
  if (!isReplicated(app)) {
    if (app.placed === undefined && app.revisions === undefined && app.rollout === undefined) return app;
    // No longer replicated: its instances go (their containers are removed by their agents).
    const { placed: _p, revisions: _r, rollout: _o, next_instance: _n, revision: _v, ...rest } = app;
    return rest as Application;
  }
  if (prev === undefined || prev === app) return app;
  let out = app;
  if (out.placed === undefined && prev.placed !== undefined) out = { ...out, placed: prev.placed };
  if (out.next_instance === undefined && prev.next_instance !== undefined) out = { ...out, next_instance: prev.next_instance };
  if (out.revision === undefined && prev.revision !== undefined) out = { ...out, revision: prev.revision };
  if (out.revisions === undefined && prev.revisions !== undefined) out = { ...out, revisions: prev.revisions };
  if (out.rollout === undefined && prev.rollout !== undefined) out = { ...out, rollout: prev.rollout };
  if (isReplicated(prev) && !sameSpec(prev, out)) {
    const was = prev.revision ?? 0;
    const revisions = { ...(out.revisions ?? {}), [String(was)]: specOf(prev) };
    out = { ...out, revision: was + 1, revisions, rollout: { state: 'updating', last_step_at: 0 } };
  }
  return pruneRevisions(out);
}

/** Drops older revisions that no instance runs; ends a rollout that has nothing left to replace. */
export function pruneRevisions(app: Application): Application {
  const used = new Set((app.placed ?? []).map((i) => String(i.revision)));
  let out = app;
  if (app.revisions !== undefined) {
    const kept = Object.fromEntries(Object.entries(app.revisions).filter(([rev]) => used.has(rev) && rev !== String(app.revision ?? 0)));
    if (Object.keys(kept).length !== Object.keys(app.revisions).length) {
      if (Object.keys(kept).length === 0) {
        const { revisions: _r, ...rest } = out;
        out = rest as Application;
      } else out = { ...out, revisions: kept };
    }
  }
  if (out.rollout?.state === 'updating' && (out.placed ?? []).every((i) => i.revision === (out.revision ?? 0))) {
    const { rollout: _o, ...rest } = out;
    out = rest as Application;
  }
  return out;
}

/**
 * `drover scale` (docs/DESIGN.md §30): `name` runs `n` instances from now on. An application
 * with instances keeps its spec (no rolling update); a single application without a dataset
 * becomes one with instances (its node is dropped: the scheduler places them, and its
 * container gives way to `<name>.<id>`). Refused, naming `instances`, for an application with
 * a dataset or a global one. Pure; the same desired when `n` is already the number.
 */
export function scaleApplication(desired: Desired, name: string, n: number): Desired {
  const app = findApplication(desired, name);
  const refuse = (message: string) =>
    new DroverError('DROVER_INVALID_CONFIGURATION', `Application "${name}" cannot be scaled: ${message}; nothing was changed.`, { detail: { issues: [{ path: 'instances', message }] } });
  if (app.volumes.length > 0) throw refuse('an application with a dataset runs as one instance (its data is on one node)');
  if (app.mode === 'global') throw refuse('a global application runs one instance on every matching node; its number follows the nodes');
  if (app.instances === n) return desired;
  const { node_uuid: _node, pinned_node_uuid: _pinned, ...rest } = app;
  const scaled = { ...rest, instances: n } as Application;
  return { ...desired, applications: desired.applications.map((a) => (a === app ? scaled : a)) };
}

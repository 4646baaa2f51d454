/**
 * Failover (docs/DESIGN.md §18): when a node is silent for lease TTL + margin, the control service moves each
 * application that can fail over (its datasets replicated, or no datasets at all) to another
 * node, without the dead node's help. Pure: time, the nodes that are up and what each node
 * reported holding are inputs.
 *
 * - `failoverCandidates`: what is due — per down node, the applications (and datasets alone)
 *   primary there that may fail over.
 * - `chooseFailoverTarget`: the up node holding the newest drover snapshot of every dataset
 *   (the application's data window is its oldest dataset's newest snapshot); ties by the
 *   placement rules (constraints met, fewest applications, then uuid). No candidate: a reason.
 * - `failover`: one document change — the application's `node_uuid` and every dataset's
 *   `primary` flip to the chosen node, the chosen node leaves `replicas`, and a migration
 *   record in phase `done` with `failover` details and a new fencing generation is added.
 *
 * Never destroys anything: the failed node's copy stays where it is; when that node comes back
 * its agent keeps it under `<pool>/drover-diverged/` (docs/DESIGN.md §18 "A node that comes back").
 */
import { randomUUID } from 'node:crypto';
import type { Application, Desired, Migration, Node } from '#common/model.ts';
import { indexOf } from '../desired/desired-index.ts';
import { flip, nextGeneration, pruned } from '../desired/migrations.ts';
import { firstUnmet } from '../scheduler/schedule.ts';

/** What a node reported holding of one dataset: its snapshots' names (drover's carry their creation time). */
export type SnapshotsOn = (node: string, datasetId: string) => readonly { name: string }[] | undefined;

export interface FailoverSubject {
  failedNode: string;
  /** null: datasets no application mounts. */
  application: string | null;
  datasetIds: string[];
}

export interface FailoverTarget {
  node: string;
  /** Per dataset, the newest drover snapshot the node holds (null for none: only for no datasets). */
  snapshots: { dataset_id: string; snapshot: string | null; created_at: number | null }[];
  /** The oldest of those snapshots' creation times, ms since the epoch; null without datasets. */
  oldestNewestAt: number | null;
}

export type FailoverChoice = { ok: true; target: FailoverTarget } | { ok: false; reason: string };

/** `drover-<yyyymmddThhmmssmmmZ>-<seq>` (docs/DESIGN.md §6) → ms since the epoch; null for other names. */
export function droverSnapshotTime(name: string): number | null {
  const m = /^drover-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z-\d+$/.exec(name);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, ms] = m.map(Number) as number[];
  return Date.UTC(y!, mo! - 1, d!, h!, mi!, s!, ms!);
}

/**
 * Whether a node silent for `silentMs` (on the control service's clock, since its last report
 * arrived) may have its applications failed over: at `failoverAfterMs` = lease TTL + margin,
 * never before. Its agent has fenced itself by then (common/fence-timing.ts). Pure.
 */
export function mayFailOver(silentMs: number, failoverAfterMs: number): boolean {
  return silentMs >= failoverAfterMs;
}

/** Failover is enabled for an application with no datasets, or whose every dataset keeps ≥ 1 replica. */
export function failoverEnabled(desired: Desired, app: Application): boolean {
  const index = indexOf(desired);
  return app.volumes.every((v) => (index.datasets.get(v.dataset_id)?.replication?.replicas ?? 0) >= 1);
}

/**
 * The applications and datasets primary on `failedNode` that may fail over now: failover
 * enabled, not in a move, not deleted. The caller decides that the node is down.
 */
export function failoverCandidates(desired: Desired, failedNode: string): FailoverSubject[] {
  const index = indexOf(desired);
  const out: FailoverSubject[] = [];
  const mounted = new Set<string>();
  for (const app of index.applicationsByNode.get(failedNode) ?? []) {
    for (const v of app.volumes) mounted.add(v.dataset_id);
    if (index.activeMigrations.byApplication.has(app.name) || !failoverEnabled(desired, app)) continue;
    const ids = [...new Set(app.volumes.map((v) => v.dataset_id))];
    if (ids.some((id) => index.datasets.get(id)?.primary !== failedNode || index.datasets.get(id)?.deleted)) continue;
    out.push({ failedNode, application: app.name, datasetIds: ids });
  }
  for (const d of index.datasetsByPrimary.get(failedNode) ?? []) {
    if (mounted.has(d.dataset_id) || d.deleted || (d.replication?.replicas ?? 0) < 1 || index.activeMigrations.byDataset.has(d.dataset_id)) continue;
    if (desired.applications.some((a) => a.volumes.some((v) => v.dataset_id === d.dataset_id))) continue;
    out.push({ failedNode, application: null, datasetIds: [d.dataset_id] });
  }
  return out;
}

/**
 * The node to fail `subject` over to. Candidates: up nodes other than the failed one that
 * meet the application's constraints and hold a drover snapshot of every dataset. Best: the
 * newest data (the latest oldest-newest snapshot); ties: fewer applications, then uuid.
 */
export function chooseFailoverTarget(desired: Desired, subject: FailoverSubject, up: ReadonlySet<string>, snapshotsOn: SnapshotsOn): FailoverChoice {
  const index = indexOf(desired);
  const app = subject.application === null ? undefined : index.applications.get(subject.application);
  const why: string[] = [];
  const fits: FailoverTarget[] = [];
  const nodes: Node[] = [...desired.nodes].sort((a, b) => a.uuid.localeCompare(b.uuid));
  for (const node of nodes) {
    if (node.uuid === subject.failedNode) continue;
    if (!up.has(node.uuid)) continue;
    const unmet = app === undefined ? null : firstUnmet(app, node);
    if (unmet !== null) {
      why.push(`${node.host} ${unmet}`);
      continue;
    }
    const snapshots: FailoverTarget['snapshots'] = [];
    let oldest: number | null = null;
    let missing: string | null = null;
    for (const id of subject.datasetIds) {
      const newest = newestDroverSnapshot(snapshotsOn(node.uuid, id));
      if (newest === null) {
        missing = id;
        break;
      }
      snapshots.push({ dataset_id: id, snapshot: newest.name, created_at: newest.at });
      oldest = oldest === null ? newest.at : Math.min(oldest, newest.at);
    }
    if (missing !== null) {
      why.push(`${node.host} holds no snapshot of dataset ${missing}`);
      continue;
    }
    fits.push({ node: node.uuid, snapshots, oldestNewestAt: oldest });
  }
  if (fits.length === 0) {
    const what = subject.application ?? `dataset ${subject.datasetIds.join(', ')}`;
    return { ok: false, reason: `no node can take over ${what}: ${why.length > 0 ? why.join('; ') : 'no other node is up'}` };
  }
  const load = (uuid: string) => index.applicationsByNode.get(uuid)?.length ?? 0;
  fits.sort((a, b) => (b.oldestNewestAt ?? 0) - (a.oldestNewestAt ?? 0) || load(a.node) - load(b.node) || a.node.localeCompare(b.node));
  return { ok: true, target: fits[0]! };
}

export interface FailoverContext {
  now: number;
  /** The version of the store write: the new generation is at least this. */
  version: number;
  /** How long the failed node had been silent. */
  failedSilentMs: number;
  newId?: () => string;
}

/**
 * One document change: `datasetIds` (and the application mounting them, if any; or
 * `subject.application` for a stateless one) fail over to `target.node`. Returns the new
 * document and the record (phase `done`, `failover` set, a generation above every other).
 * The caller checks the failed node is down and the target was chosen by `chooseFailoverTarget`
 * (or by an operator's forced move). Pure.
 */
export function failover(desired: Desired, subject: FailoverSubject, target: FailoverTarget, ctx: FailoverContext): { desired: Desired; record: Migration } {
  const oldest = target.oldestNewestAt;
  const record: Migration = {
    id: (ctx.newId ?? randomUUID)(),
    application: subject.application,
    dataset_ids: [...subject.datasetIds],
    from: subject.failedNode,
    to: target.node,
    phase: 'done',
    generation: nextGeneration(desired, ctx.version),
    round: 0,
    bytes_sent: 0,
    bytes_total: null,
    rate_bytes_per_second: null,
    started_at: ctx.now,
    updated_at: ctx.now,
    cutover_started_at: null,
    cutover_ms: null,
    error: null,
    failover: {
      failed_silent_ms: ctx.failedSilentMs,
      snapshots: target.snapshots,
      snapshot_age_seconds: oldest === null ? null : Math.max(0, (ctx.now - oldest) / 1000),
      // What the failed node may have written after the snapshot: up to when it was last heard
      // from (a fenced node writes nothing later; a paused one is cut off by the routes).
      data_window_seconds: oldest === null ? null : Math.max(0, (ctx.now - ctx.failedSilentMs - oldest) / 1000),
      // The chosen node promotes once the proxies hold the route (failover-hold.ts).
      routes_held_at: null,
      ready_at: null,
      diverged: [],
      rejoined: [],
    },
  };
  let out = flip(desired, subject.application, subject.datasetIds, target.node);
  const ids = new Set(subject.datasetIds);
  out = { ...out, datasets: out.datasets.map((d) => (ids.has(d.dataset_id) && d.replicas.includes(target.node) ? { ...d, replicas: d.replicas.filter((r) => r !== target.node) } : d)) };
  return { desired: { ...out, migrations: pruned([...out.migrations, record]) }, record };
}

/** A failover record's change once the chosen node runs the application, or the failed node kept a copy. Pure. */
export function updateFailover(desired: Desired, id: string, fn: (m: Migration) => Migration): Desired {
  const at = desired.migrations.findIndex((m) => m.id === id);
  if (at < 0 || desired.migrations[at]!.failover === undefined) return desired;
  const next = fn(desired.migrations[at]!);
  if (next === desired.migrations[at]) return desired;
  const migrations = [...desired.migrations];
  migrations[at] = next;
  return { ...desired, migrations };
}

function newestDroverSnapshot(snapshots: readonly { name: string }[] | undefined): { name: string; at: number } | null {
  let best: { name: string; at: number } | null = null;
  for (const s of snapshots ?? []) {
    const at = droverSnapshotTime(s.name);
    if (at === null) continue;
    if (best === null || at > best.at || (at === best.at && s.name > best.name)) best = { name: s.name, at };
  }
  return best;
}

/** One step of a failover's story, as the control service logs it under the record's id (docs/DESIGN.md §25). */
export interface FailoverStep {
  msg: 'failover application ready' | 'failover copy kept aside' | 'failover copy rejoined';
  fields: Record<string, unknown>;
}

/**
 * What a failover record learned between two versions of it (`before` undefined: it is new; the
 * decision is logged as `failed over` where it is written, the route hold by failover-hold.ts): the application
 * ready on the chosen node, each copy the failed node kept aside or rejoined. Pure.
 */
export function failoverSteps(before: Migration | undefined, after: Migration): FailoverStep[] {
  const was = before?.failover;
  const now = after.failover;
  if (now === undefined || was === undefined) return [];
  const steps: FailoverStep[] = [];
  if (was.ready_at === null && now.ready_at !== null) {
    steps.push({ msg: 'failover application ready', fields: { node: after.to, sinceFailoverMs: now.ready_at - after.started_at } });
  }
  for (const c of now.diverged) {
    if (!was.diverged.some((k) => k.name === c.name)) steps.push({ msg: 'failover copy kept aside', fields: { node: c.node_uuid, datasetId: c.dataset_id, name: c.name } });
  }
  for (const c of now.rejoined) {
    if (!was.rejoined.some((k) => k.dataset_id === c.dataset_id && k.node_uuid === c.node_uuid)) steps.push({ msg: 'failover copy rejoined', fields: { node: c.node_uuid, datasetId: c.dataset_id } });
  }
  return steps;
}

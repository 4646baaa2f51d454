/**
 * The read side of observed state, in the API's shapes (common/api.ts): Flocker's
 * `/v1/state/*` answers and drover's application status. Pure: desired + observed in.
 * A node that went silent keeps its datasets and containers here, marked unknown (or down),
 * and nothing seen there is passed off as current: health reads `unknown`.
 */
import type { ApplicationStatus, ContainerState, DatasetState, NodeStateAnswer, ReplicationAnswer } from '#common/api.ts';
import { applicationReplicas } from './replication-status.ts';
import type { Application, Desired, Migration, NodeProblem } from '#common/model.ts';
import { indexOf } from '../desired/desired-index.ts';
import { instanceName, isReplicated } from '../desired/instances.ts';
import type { ObservedState } from './observed-state.ts';

export function datasetStates(observed: ObservedState): DatasetState[] {
  const states = new Map<string, DatasetState>();
  for (const record of observed.all()) {
    for (const d of record.report.datasets) {
      const seen = states.get(d.dataset_id);
      if (d.writable) states.set(d.dataset_id, { dataset_id: d.dataset_id, primary: record.report.uuid, ...(d.path === null ? {} : { path: d.path }), maximum_size: d.maximum_size });
      else if (!seen) states.set(d.dataset_id, { dataset_id: d.dataset_id, maximum_size: d.maximum_size });
    }
  }
  return [...states.values()];
}

export function containerStates(desired: Desired, observed: ObservedState): ContainerState[] {
  const apps = indexOf(desired).applications;
  const out: ContainerState[] = [];
  for (const record of observed.all()) {
    const nodeState = observed.stateOf(record.report.uuid) ?? 'unknown';
    for (const c of record.report.containers) {
      const { node_uuid: _placed, ...config } = apps.get(c.name) ?? {};
      out.push({
        ...config,
        name: c.name,
        node_uuid: record.report.uuid,
        image: c.image,
        running: c.running,
        health: nodeState === 'known' ? c.health : 'unknown',
        restart_count: c.restart_count,
        published: c.published,
        node_state: nodeState,
      });
    }
  }
  return out;
}

/** Every node that reported, and every registered node (unknown until it reports again). */
export function nodeStates(desired: Desired, observed: ObservedState): NodeStateAnswer[] {
  const out: NodeStateAnswer[] = [];
  const listed = new Set<string>();
  for (const record of observed.all()) {
    const r = record.report;
    listed.add(r.uuid);
    out.push({ uuid: r.uuid, host: r.host, state: observed.stateOf(r.uuid) ?? 'unknown', era: r.era, labels: r.labels, last_seen: record.lastSeen, silent_ms: observed.silentMs(r.uuid), problems: r.problems });
  }
  for (const node of desired.nodes) {
    if (!listed.has(node.uuid)) out.push({ uuid: node.uuid, host: node.host, state: 'unknown', era: null, labels: node.labels, last_seen: null, silent_ms: null });
  }
  return out;
}

/** `replication`: the replicated datasets' state (replication-status.ts), for each application's `replicas`. */
export function applicationStatuses(desired: Desired, observed: ObservedState, unschedulable: ReadonlyMap<string, string>, replication: readonly ReplicationAnswer[] = []): ApplicationStatus[] {
  return desired.applications.map((app) => applicationStatus(desired, app, observed, unschedulable, replication));
}

export function applicationStatus(desired: Desired, app: Application, observed: ObservedState, unschedulable: ReadonlyMap<string, string>, replication: readonly ReplicationAnswer[] = []): ApplicationStatus {
  if (isReplicated(app)) return instancesStatus(app, observed, unschedulable);
  const node = app.node_uuid;
  const nodeState = node === undefined ? null : (observed.stateOf(node) ?? 'unknown');
  const seen = node === undefined ? undefined : observed.get(node)?.containers.get(app.name);
  let state: ApplicationStatus['state'];
  if (node === undefined) state = 'unplaced';
  else if (nodeState !== 'known') state = 'unknown';
  else if (!seen) state = 'missing';
  else state = seen.running ? 'running' : 'stopped';
  const migration = indexOf(desired).activeMigrations.byApplication.get(app.name) ?? null;
  return {
    name: app.name,
    project: app.project ?? null,
    image: app.image,
    node_uuid: node ?? null,
    state,
    // The last health seen on a silent node is not its health now.
    health: seen === undefined ? null : nodeState === 'known' ? seen.health : 'unknown',
    unschedulable_reason: unschedulable.get(app.name) ?? null,
    migration,
    replicas: applicationReplicas(replication, app.name),
    node_state: nodeState,
    node_silent_ms: node === undefined ? null : observed.silentMs(node),
    last_error: lastError(desired, app, migration, observed),
    ...waitingFor(app, observed),
  };
}

/** The node's reason for holding `app`'s container back while a dependency is not met (docs/DESIGN.md §22), if any. */
function waitingFor(app: Application, observed: ObservedState): { waiting?: string } {
  if (app.node_uuid === undefined || app.depends_on === undefined) return {};
  const subject = `container:drover-${app.name}`;
  const reason = observed.get(app.node_uuid)?.report.problems.find((p) => p.kind === 'blocked' && p.subject === subject && p.reason.startsWith('waiting for '))?.reason;
  return reason === undefined ? {} : { waiting: reason };
}

/**
 * The newest error about `app`: a change its move's target or its node failed on its
 * container (the target first: during a move that is where it is starting), else why its
 * node holds a stopped or unhealthy container back (`exited with code 1; restarting after
 * backoff`), else the reason its latest move failed. Reasons carry the node's address.
 */
export function lastError(desired: Desired, app: Application, migration: Migration | null, observed: ObservedState): string | null {
  // The agent names an application's container drover-<name> (convergence-agent/plan/labels.ts).
  const subject = `container:drover-${app.name}`;
  for (const uuid of [migration?.to, app.node_uuid]) {
    if (uuid === undefined) continue;
    const record = observed.get(uuid);
    const problem = record?.report.problems.find((p) => p.kind === 'failed' && p.subject === subject);
    if (problem) return `${problem.reason} on ${record!.report.host}`;
  }
  if (migration !== null) return null;
  // The agent's restart decision for a container that stopped or is unhealthy
  // (convergence-agent/plan/restart.ts); a clean exit (code 0) is not an error.
  const record = app.node_uuid === undefined ? undefined : observed.get(app.node_uuid);
  const crashed = record?.report.problems.find((p) => isCrash(p, subject));
  if (crashed) return `${crashed.reason} on ${record!.report.host}`;
  let latest: Migration | undefined;
  for (const m of desired.migrations) if (m.application === app.name && (latest === undefined || m.started_at >= latest.started_at)) latest = m;
  return latest?.phase === 'failed' && latest.error !== null ? `move to ${observed.get(latest.to)?.report.host ?? latest.to} failed: ${latest.error}` : null;
}

/** A blocked container's reason that says it stopped with an error or is unhealthy (convergence-agent/plan/restart.ts). */
function isCrash(p: NodeProblem, subject: string): boolean {
  return p.kind === 'blocked' && p.subject === subject && /^(exited with code (?!0;)|unhealthy)/.test(p.reason);
}

/**
 * An application with several instances (docs/DESIGN.md §30): each instance as its node
 * reports it; the application is `running` while at least one instance runs.
 */
function instancesStatus(app: Application, observed: ObservedState, unschedulable: ReadonlyMap<string, string>): ApplicationStatus {
  const instances = (app.placed ?? []).map((i) => {
    const nodeState = observed.stateOf(i.node_uuid) ?? 'unknown';
    const seen = observed.get(i.node_uuid)?.containers.get(instanceName(app.name, i.id));
    const state: 'running' | 'stopped' | 'missing' | 'unknown' = nodeState !== 'known' ? 'unknown' : seen === undefined ? 'missing' : seen.running ? 'running' : 'stopped';
    return { id: i.id, node_uuid: i.node_uuid, state, health: seen === undefined ? null : nodeState === 'known' ? seen.health : 'unknown', revision: i.revision, draining: i.draining_since !== undefined };
  });
  const live = instances.filter((i) => !i.draining);
  const state: ApplicationStatus['state'] = live.length === 0 ? 'unplaced' : live.some((i) => i.state === 'running') ? 'running' : live.some((i) => i.state === 'unknown') ? 'unknown' : 'missing';
  const problems: string[] = [];
  let waiting: string | undefined;
  for (const i of app.placed ?? []) {
    const subject = `container:drover-${instanceName(app.name, i.id)}`;
    const record = observed.get(i.node_uuid);
    const problem = record?.report.problems.find((p) => p.kind === 'failed' && p.subject === subject) ?? record?.report.problems.find((p) => isCrash(p, subject));
    if (problem) problems.push(`${problem.reason} on ${record!.report.host}`);
    // An instance held back by its node until a dependency is met (depends_on), as for a single application.
    waiting ??= record?.report.problems.find((p) => p.kind === 'blocked' && p.subject === subject && p.reason.startsWith('waiting for '))?.reason;
  }
  return {
    name: app.name,
    project: app.project ?? null,
    image: app.image,
    node_uuid: null,
    state,
    health: null,
    unschedulable_reason: unschedulable.get(app.name) ?? null,
    migration: null,
    replicas: [],
    node_state: null,
    node_silent_ms: null,
    last_error: problems[0] ?? null,
    ...(waiting === undefined ? {} : { waiting }),
    instances,
    ...(app.rollout === undefined ? {} : { rollout: { state: app.rollout.state, ...(app.rollout.reason === undefined ? {} : { reason: app.rollout.reason }) } }),
  };
}

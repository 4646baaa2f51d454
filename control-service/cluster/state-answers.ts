/**
 * The read side of observed state, in the API's shapes (common/api.ts): Flocker's
 * `/v1/state/*` answers and drover's application status. Pure: desired + observed in.
 * A node that went silent keeps its datasets and containers here, marked unknown.
 */
import type { ApplicationStatus, ContainerState, DatasetState, NodeStateAnswer, ReplicationAnswer } from '#common/api.ts';
import { applicationReplicas } from './replication-status.ts';
import type { Application, Desired } from '#common/model.ts';
import { indexOf } from '../desired/desired-index.ts';
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
        health: c.health,
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
    out.push({ uuid: r.uuid, host: r.host, state: observed.stateOf(r.uuid) ?? 'unknown', era: r.era, labels: r.labels, last_seen: record.lastSeen, problems: r.problems });
  }
  for (const node of desired.nodes) {
    if (!listed.has(node.uuid)) out.push({ uuid: node.uuid, host: node.host, state: 'unknown', era: null, labels: node.labels, last_seen: null });
  }
  return out;
}

/** `replication`: the replicated datasets' state (replication-status.ts), for each application's `replicas`. */
export function applicationStatuses(desired: Desired, observed: ObservedState, unschedulable: ReadonlyMap<string, string>, replication: readonly ReplicationAnswer[] = []): ApplicationStatus[] {
  return desired.applications.map((app) => applicationStatus(desired, app, observed, unschedulable, replication));
}

export function applicationStatus(desired: Desired, app: Application, observed: ObservedState, unschedulable: ReadonlyMap<string, string>, replication: readonly ReplicationAnswer[] = []): ApplicationStatus {
  const node = app.node_uuid;
  const nodeState = node === undefined ? null : observed.stateOf(node);
  const seen = node === undefined ? undefined : observed.get(node)?.containers.get(app.name);
  let state: ApplicationStatus['state'];
  if (node === undefined) state = 'unplaced';
  else if (nodeState !== 'known') state = 'unknown';
  else if (!seen) state = 'missing';
  else state = seen.running ? 'running' : 'stopped';
  return {
    name: app.name,
    project: app.project ?? null,
    image: app.image,
    node_uuid: node ?? null,
    state,
    health: seen?.health ?? null,
    unschedulable_reason: unschedulable.get(app.name) ?? null,
    migration: indexOf(desired).activeMigrations.byApplication.get(app.name) ?? null,
    replicas: applicationReplicas(replication, app.name),
  };
}

/**
 * The node's report to the control service (NodeReport): identity, datasets, containers,
 * problems and, on a primary, its replicas' lag. Pure. Returns null when a part is unknown this pass: reporting "no datasets"
 * for "could not list datasets" would tell the control service a lie.
 */
import type { NodeProblem, NodeReport, NodeTransfer, ReplicaStatus } from '#common/model.ts';
import type { LocalObserved } from './plan/types.ts';

export interface NodeIdentity {
  uuid: string;
  address: string;
  /** Boot id of the host: a new era means the node restarted. */
  era: string;
  labels: Record<string, string>;
  transfer: NodeTransfer;
  /** The logs endpoint's port, once it listens (logs/logs-server.ts). */
  logs?: { port: number };
}

/** The replication scheduler's pairs where this node is primary, with their order (`ReplicationScheduler.statusReport`). */
export interface ReplicationStatusReport {
  /** Rises with every change of the statuses (NodeReport.replication_seq, docs/DESIGN.md §38); null: not counted. */
  seq: number | null;
  statuses: ReplicaStatus[];
}

const NO_REPLICATION: ReplicationStatusReport = { seq: null, statuses: [] };

/**
 * `replication`: the replication scheduler's pairs where this node is primary (replication/scheduler.ts).
 * `updates`: app name → the update hold whose spec its container runs (the plan's `updates`).
 */
export function buildReport(identity: NodeIdentity, observed: LocalObserved, problems: NodeProblem[], replication: ReplicationStatusReport = NO_REPLICATION, updates: ReadonlyMap<string, string> = NO_UPDATES): NodeReport | null {
  if (observed.datasets === null || observed.containers === null) return null;
  const snapshots = observed.snapshots ?? {};
  return {
    uuid: identity.uuid,
    host: identity.address,
    era: identity.era,
    labels: identity.labels,
    transfer: identity.transfer,
    ...(identity.logs ? { logs: identity.logs } : {}),
    datasets: observed.datasets.map((d) => ({
      dataset_id: d.datasetId,
      path: d.mounted ? d.mountpoint : null,
      writable: !d.readonly,
      maximum_size: d.refquota,
      used_bytes: d.usedBytes,
      snapshots: (snapshots[d.datasetId] ?? []).map((s) => ({ name: s.snapshot, guid: s.guid, createtxg: s.createtxg })),
    })),
    containers: observed.containers.map((c) => ({
      name: c.app,
      image: c.image,
      // A gated container's application has not run: it is not running anywhere yet.
      running: c.running && (c.gate === null || c.gate.state === 'open'),
      health: c.health,
      restart_count: c.restartCount,
      // A container that ran and ended (depends_on: service_completed_successfully reads it).
      ...(!c.running && c.finishedAt !== null && c.exitCode !== null ? { exit_code: c.exitCode } : {}),
      published: c.published,
      generation: c.generation,
      ...(updates.has(c.app) ? { update: updates.get(c.app)! } : {}),
    })),
    problems: problems.slice(0, 1000).map((p) => ({ ...p, reason: p.reason.slice(0, 2048), subject: p.subject.slice(0, 256) })),
    replication: replication.statuses,
    ...(replication.seq === null ? {} : { replication_seq: replication.seq }),
    ...(observed.diverged == null
      ? {}
      : {
          diverged: observed.diverged.filter((c) => c.rejoined !== true).slice(0, 1000).map((c) => ({ dataset_id: c.datasetId, name: c.name, generation: c.generation, used_bytes: c.usedBytes })),
          rejoined: observed.diverged.filter((c) => c.rejoined === true).slice(0, 1000).map((c) => ({ dataset_id: c.datasetId, generation: c.generation })),
        }),
  };
}

const NO_UPDATES: ReadonlyMap<string, string> = new Map();

/**
 * Replication as the API shows it (`GET /v1/drover/replication`, docs/DESIGN.md §17): per
 * replicated dataset and chosen replica, what the primary's agent last reported, with its lag
 * brought up to now and the reason it is a problem, if it is one. Pure: time is an input.
 *
 * Lag is measured on the primary's clock only: the agent reports `lag_seconds` at report
 * time, and the time since that report arrived (the control service's clock, an interval,
 * not a date) is added, so the nodes' clocks need not agree and a primary that goes silent
 * is seen falling behind.
 */
import type { ApplicationStatus, ReplicaAnswer, ReplicationAnswer, ReplicationEvent } from '#common/api.ts';
import type { Desired, DivergedCopy, Node, ReplicaState, ReplicaStatus } from '#common/model.ts';
import { indexOf } from '../desired/desired-index.ts';
import type { ReplicaChoice } from '../scheduler/replicas.ts';

/** A replica is a problem when its lag exceeds this many intervals. */
export const LAG_PROBLEM_INTERVALS = 3;

export interface PrimaryReport {
  replication: readonly ReplicaStatus[];
  /** When the report arrived, ms (the control service's clock). */
  receivedAt: number;
}

export interface StatusInput {
  desired: Desired;
  /** The primary's last report, if any. */
  reportOf: (node: string) => PrimaryReport | undefined;
  now: number;
  /** The scheduler's choice now, for the dataset-level problem (fewer replicas than asked). */
  choices?: ReadonlyMap<string, ReplicaChoice>;
  /** The copies a node reported keeping aside (NodeReport.diverged, docs/DESIGN.md §18). */
  keptOn?: (node: string) => readonly DivergedCopy[] | undefined;
}

const byDataset = new WeakMap<readonly ReplicaStatus[], Map<string, ReplicaStatus[]>>();

function statusesOf(report: PrimaryReport, datasetId: string): ReplicaStatus[] {
  let map = byDataset.get(report.replication);
  if (!map) {
    map = new Map();
    for (const s of report.replication) {
      const list = map.get(s.dataset_id);
      if (list) list.push(s);
      else map.set(s.dataset_id, [s]);
    }
    byDataset.set(report.replication, map);
  }
  return map.get(datasetId) ?? [];
}

/** Every dataset with a replication policy, with its replicas' state (a chosen replica not reported yet: seeding). */
export function replicationAnswers(input: StatusInput): ReplicationAnswer[] {
  const index = indexOf(input.desired);
  const out: ReplicationAnswer[] = [];
  for (const dataset of index.replicatedDatasets) {
    const policy = dataset.replication;
    if (policy === null || dataset.deleted) continue;
    const report = input.reportOf(dataset.primary);
    const statuses = report ? statusesOf(report, dataset.dataset_id) : [];
    const replicas = dataset.replicas.map((node): ReplicaAnswer => {
      const s = statuses.find((x) => x.replica === node);
      const name = nodeName(index.nodes.get(node));
      const named = name === undefined ? {} : { node_name: name };
      if (!s || !report) {
        return { node, ...named, state: 'seeding', lag_seconds: null, newest_snapshot: null, bytes_sent_total: 0, last_success_at: null, last_error: null, problem: null };
      }
      const lag = s.lag_seconds === null ? null : round(s.lag_seconds + Math.max(0, input.now - report.receivedAt) / 1000);
      return {
        node,
        ...named,
        state: s.state,
        lag_seconds: lag,
        newest_snapshot: s.newest_snapshot,
        bytes_sent_total: s.bytes_sent_total,
        last_success_at: s.last_success_at,
        last_error: s.last_error,
        problem: problemOf(s.state, lag, policy.interval_seconds, s.last_error),
      };
    });
    out.push({
      dataset_id: dataset.dataset_id,
      application: index.applicationByDataset.get(dataset.dataset_id)?.name ?? null,
      primary: dataset.primary,
      policy,
      replicas,
      problem: input.choices?.get(dataset.dataset_id)?.problem ?? null,
      kept: input.desired.nodes.flatMap((n) =>
        (input.keptOn?.(n.uuid) ?? [])
          .filter((c) => c.dataset_id === dataset.dataset_id)
          .map((c) => ({ node: n.uuid, ...(nodeName(n) === undefined ? {} : { node_name: nodeName(n) }), name: c.name, generation: c.generation, used_bytes: c.used_bytes })),
      ),
    });
  }
  return out;
}

/** Why a replica is a problem, or null: diverged, in error, or more than 3 intervals behind. */
export function problemOf(state: ReplicaState, lag: number | null, intervalSeconds: number, error: ReplicaStatus['last_error']): string | null {
  const cause = error ? ` (${error.code}: ${error.message})` : '';
  if (state === 'diverged') return `diverged: the replica's copy no longer follows the primary's${cause}`;
  if (state === 'error') return `replication failing${cause}`;
  if (lag !== null && lag > LAG_PROBLEM_INTERVALS * intervalSeconds) {
    return `${lag}s behind the primary, more than ${LAG_PROBLEM_INTERVALS} × the interval (${intervalSeconds}s)${cause}`;
  }
  return null;
}

const SEVERITY: Record<ReplicaState, number> = { ok: 0, seeding: 1, paused: 2, error: 3, diverged: 4 };

const byApplication = new WeakMap<readonly ReplicationAnswer[], Map<string, ApplicationStatus['replicas']>>();

/** An application's replicas for its status: per replica node, the worst of its datasets there. */
export function applicationReplicas(answers: readonly ReplicationAnswer[], application: string): ApplicationStatus['replicas'] {
  let grouped = byApplication.get(answers);
  if (!grouped) {
    grouped = groupByApplication(answers);
    byApplication.set(answers, grouped);
  }
  return grouped.get(application) ?? [];
}

function groupByApplication(answers: readonly ReplicationAnswer[]): Map<string, ApplicationStatus['replicas']> {
  const out = new Map<string, Map<string, ApplicationStatus['replicas'][number]>>();
  for (const a of answers) {
    if (a.application === null) continue;
    let byNode = out.get(a.application);
    if (!byNode) out.set(a.application, (byNode = new Map()));
    for (const r of a.replicas) {
      const seen = byNode.get(r.node);
      if (!seen) byNode.set(r.node, { node: r.node, lag_seconds: r.lag_seconds, state: r.state });
      else {
        const state = SEVERITY[r.state] > SEVERITY[seen.state] ? r.state : seen.state;
        const lag = seen.lag_seconds === null || r.lag_seconds === null ? (seen.lag_seconds ?? r.lag_seconds) : Math.max(seen.lag_seconds, r.lag_seconds);
        byNode.set(r.node, { node: r.node, lag_seconds: lag, state });
      }
    }
  }
  return new Map([...out].map(([name, byNode]) => [name, [...byNode.values()]]));
}

/**
 * Remembers each replica's state and problem, and says which changed since the last call:
 * the `replication` events (a state change, or becoming or ceasing to be a problem), and one
 * event per copy newly kept aside on a node (`kept`: where the operator finds it). Copies
 * already kept at the first call are not news (a restarted control service does not repeat them).
 */
export class ReplicationWatch {
  private last = new Map<string, { state: ReplicaState; problem: string | null }>();
  private keptSeen: Set<string> | null = null;

  changes(answers: readonly ReplicationAnswer[]): ReplicationEvent[] {
    const next = new Map<string, { state: ReplicaState; problem: string | null }>();
    const events: ReplicationEvent[] = [];
    for (const a of answers) {
      for (const r of a.replicas) {
        const key = `${a.dataset_id} ${r.node}`;
        const was = this.last.get(key);
        next.set(key, { state: r.state, problem: r.problem });
        // A lag problem's text changes every second: only its coming and going is news.
        if (!was || was.state !== r.state || (was.problem === null) !== (r.problem === null)) {
          events.push({ dataset_id: a.dataset_id, replica: r.node, state: r.state, lag_seconds: r.lag_seconds, problem: r.problem });
        }
      }
    }
    this.last = next;
    const kept = answers.flatMap((a) => a.kept.map((k) => ({ dataset_id: a.dataset_id, ...k })));
    if (this.keptSeen !== null) {
      for (const k of kept) {
        if (this.keptSeen.has(k.name)) continue;
        events.push({ dataset_id: k.dataset_id, replica: k.node, state: 'diverged', lag_seconds: null, problem: `diverged copy set aside as ${k.name} (drover never destroys it)`, kept: k.name });
      }
    }
    this.keptSeen = new Set([...(this.keptSeen ?? []), ...kept.map((k) => k.name)]);
    return events;
  }
}

function nodeName(node: Node | undefined): string | undefined {
  return node?.labels.name;
}

function round(seconds: number): number {
  return Math.round(seconds * 10) / 10;
}

/**
 * What the agents report, kept in memory (docs/DESIGN.md §3 "observed state"): per node the last
 * report and when it came. Each report renews the node's lease for `timeoutMs` (the lease
 * TTL). A node whose lease lapsed is *unknown*; after `downGraceMs` more it is *down*. Either
 * way it is shown as such and its datasets and containers are kept, never read as absent
 * (unknown is not empty). A report with a new era (the host rebooted) replaces everything
 * from before. A primary's replication status is kept beside its last report, merged from its
 * full and its replication-only reports by the agent's order (replication-reports.ts, §38).
 */
import type { NodeReport, ObservedContainer, ReplicationReport } from '#common/model.ts';
import { ReplicationReports, type ReplicationRecord, type ReplicationRefusal } from './replication-reports.ts';

/** known: its lease is held; unknown: the lease lapsed; down: lapsed for longer than the grace. */
export type NodeState = 'known' | 'unknown' | 'down';

export interface NodeRecord {
  readonly report: NodeReport;
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** The node's containers by name. */
  readonly containers: ReadonlyMap<string, ObservedContainer>;
  /** The ids of the datasets present on the node. */
  readonly datasetIds: ReadonlySet<string>;
}

export interface ReportEffect {
  /** The node reported for the first time since this control service started. */
  first: boolean;
  /** The node was unknown and reports again. */
  cameBack: boolean;
  /** Anything in the report differs from the last one. */
  changed: boolean;
  /** The set of datasets present changed (agent views depend on it). */
  datasetsChanged: boolean;
  /** Containers (running, health, published ports) changed (routes depend on it). */
  containersChanged: boolean;
}

export class ObservedState {
  private readonly nodes = new Map<string, NodeRecord & { text: string; containersText: string; datasetKey: string }>();
  private readonly states = new Map<string, NodeState>();
  /** Dataset id → the nodes that reported it present; rebuilt after a report changes the sets. */
  private holders: Map<string, string[]> | null = null;
  private changes = 0;
  /** Nodes not heard from by this process, with when they were last heard of elsewhere (seed). */
  private readonly seeded = new Map<string, number>();
  private readonly replicationReports = new ReplicationReports();

  constructor(
    private readonly clock: () => number,
    /** The lease TTL: silence after which a node is unknown, in milliseconds. */
    readonly timeoutMs: number,
    /** Further silence after which an unknown node is down, in milliseconds. */
    readonly downGraceMs: number = 30_000,
  ) {}

  /** Counts changes to what is observed (reports that differ, nodes going up or unknown). */
  get version(): number {
    return this.changes;
  }

  /**
   * The report, when `text` is word for word the last report of a node: a repeated report
   * is not parsed again. The node is guessed from the first `"uuid"` in the text; the
   * comparison with that node's last text makes the guess safe.
   */
  sameAsLast(text: string): NodeReport | null {
    const uuid = /"uuid"\s*:\s*"([0-9a-f-]{36})"/.exec(text.slice(0, 4096))?.[1];
    const record = uuid === undefined ? undefined : this.nodes.get(uuid);
    return record !== undefined && record.text === text ? record.report : null;
  }

  /** Records a report; `text` is its raw JSON when known (a repeat of it is then cheap to spot). */
  report(report: NodeReport, raw?: string): ReportEffect {
    const now = this.clock();
    const before = this.nodes.get(report.uuid);
    const text = raw ?? JSON.stringify(report);
    const wasUp = this.states.get(report.uuid) === 'known' && before !== undefined && now - before.lastSeen <= this.timeoutMs;
    this.states.set(report.uuid, 'known');
    const newEra = before !== undefined && before.report.era !== report.era;
    this.replicationReports.fromFullReport(report.uuid, report.replication, report.replication_seq, newEra, now);
    if (before !== undefined && before.text === text) {
      // The steady state: the same report again. Only the time it was seen changes.
      this.nodes.set(report.uuid, { ...before, lastSeen: now });
      if (!wasUp) this.changes++;
      return { first: false, cameBack: !wasUp, changed: false, datasetsChanged: false, containersChanged: false };
    }
    const containersText = JSON.stringify(report.containers);
    const datasetKey = report.datasets
      .map((d) => d.dataset_id)
      .sort()
      .join(',');
    this.nodes.set(report.uuid, {
      report,
      firstSeen: before?.firstSeen ?? now,
      lastSeen: now,
      containers: new Map(report.containers.map((c) => [c.name, c])),
      datasetIds: new Set(report.datasets.map((d) => d.dataset_id)),
      text,
      containersText,
      datasetKey,
    });
    this.changes++;
    if (before?.datasetKey !== datasetKey) this.holders = null;
    return {
      first: before === undefined,
      cameBack: before !== undefined && !wasUp,
      changed: true,
      datasetsChanged: before?.datasetKey !== datasetKey,
      containersChanged: before?.containersText !== containersText,
    };
  }

  /**
   * A primary's replication-only report (§38): replaces the node's replication status when it
   * is newer than the one held; the node's last report, its lease and its state are untouched
   * (a report of replication alone says nothing of the rest of the node).
   * @returns null when merged, else why not.
   */
  replication(report: ReplicationReport): ReplicationRefusal | null {
    // Not counted in `version`: what is cached by it (dataset and container states) shows no replication.
    return this.replicationReports.fromReplicationReport(report, this.nodes.get(report.uuid)?.report.era, this.clock());
  }

  /** The node's replication status, newest of its full and replication-only reports, with when it arrived. */
  replicationOf(uuid: string): ReplicationRecord | undefined {
    return this.replicationReports.get(uuid);
  }

  get(uuid: string): NodeRecord | undefined {
    return this.nodes.get(uuid);
  }

  all(): Iterable<NodeRecord> {
    return this.nodes.values();
  }

  stateOf(uuid: string): NodeState | null {
    const silent = this.silentMs(uuid);
    if (silent === null) return null;
    if (silent <= this.timeoutMs) return 'known';
    return silent <= this.timeoutMs + this.downGraceMs ? 'unknown' : 'down';
  }

  /**
   * Milliseconds since the node's last report; null when it has not reported since this service
   * started and nothing was `seed`ed for it.
   */
  silentMs(uuid: string): number | null {
    const lastSeen = this.nodes.get(uuid)?.lastSeen ?? this.seeded.get(uuid);
    return lastSeen === undefined ? null : Math.max(0, this.clock() - lastSeen);
  }

  /**
   * When a node was last heard of by another control service (a new leader learns it from the
   * node liveness leases in etcd, docs/DESIGN.md §28): its silence is then judged from that
   * moment. Ignored for a node that reported here. `lastSeen` must not be earlier than the
   * node's real last report (an estimate errs late), or a live node could be failed over.
   */
  seed(uuid: string, lastSeen: number): void {
    if (!this.nodes.has(uuid)) this.seeded.set(uuid, lastSeen);
  }

  /** Nodes that reported within the timeout. */
  upNodes(): Set<string> {
    const now = this.clock();
    const up = new Set<string>();
    for (const [uuid, record] of this.nodes) if (now - record.lastSeen <= this.timeoutMs) up.add(uuid);
    return up;
  }

  /** The nodes that reported dataset `datasetId` present (known or unknown now). */
  holding(datasetId: string): readonly string[] {
    if (!this.holders) {
      this.holders = new Map();
      for (const [uuid, record] of this.nodes) {
        for (const id of record.datasetIds) {
          const list = this.holders.get(id);
          if (list) list.push(uuid);
          else this.holders.set(id, [uuid]);
        }
      }
    }
    return this.holders.get(datasetId) ?? [];
  }

  byEra(era: string): string | null {
    for (const [uuid, record] of this.nodes) if (record.report.era === era) return uuid;
    return null;
  }

  /**
   * Finds nodes whose state changed since the last call (call it every second or so): the
   * ones whose lease lapsed (`unknown`), and the ones silent past the grace too (`down`). The
   * ones that came back are announced by `report`.
   */
  sweep(): { unknown: string[]; down: string[] } {
    const unknown: string[] = [];
    const down: string[] = [];
    for (const uuid of this.nodes.keys()) {
      const was = this.states.get(uuid);
      const now = this.stateOf(uuid);
      if (now === null || now === 'known' || now === was) continue;
      if (was === 'known') unknown.push(uuid);
      if (now === 'down') down.push(uuid);
      this.states.set(uuid, now);
    }
    if (unknown.length + down.length > 0) this.changes++;
    return { unknown, down };
  }
}

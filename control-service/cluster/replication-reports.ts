/**
 * Each primary's replication status as the control service knows it (docs/DESIGN.md §38):
 * from the node's full reports (NodeReport.replication) and from its replication-only reports
 * (ReplicationReport, sent the moment a step ends), whichever is newer by the agent's `seq`.
 * Kept apart from the node's last report so that a replication-only report never makes the
 * rest of that report (datasets, containers, the lease) look newer than it is, and a full
 * report built before a replication-only one arrived never rolls it back. Pure: time is an input.
 */
import type { ReplicaStatus, ReplicationReport } from '#common/model.ts';

export interface ReplicationRecord {
  readonly statuses: readonly ReplicaStatus[];
  /** The agent's order of this status; null: an agent that sends none (taken as newest). */
  readonly seq: number | null;
  /** When the status arrived, ms (the control service's clock): its `lag_seconds` was measured then. */
  readonly receivedAt: number;
}

/** Why a replication-only report was not merged. */
export type ReplicationRefusal = 'no-report' | 'other-era' | 'older';

export class ReplicationReports {
  private readonly byNode = new Map<string, ReplicationRecord>();

  get(uuid: string): ReplicationRecord | undefined {
    return this.byNode.get(uuid);
  }

  /**
   * The replication part of a full report that just arrived. Taken when it is the node's first,
   * of a new era (the host restarted: what the old era said is over), has no `seq` (an older
   * agent), or a `seq` above the one held; otherwise what is held stays, received when it was.
   * @returns whether it was taken.
   */
  fromFullReport(uuid: string, statuses: readonly ReplicaStatus[], seq: number | undefined, newEra: boolean, now: number): boolean {
    const held = this.byNode.get(uuid);
    if (held === undefined || newEra || seq === undefined || held.seq === null || seq > held.seq) {
      this.byNode.set(uuid, { statuses, seq: seq ?? null, receivedAt: now });
      return true;
    }
    return false;
  }

  /**
   * A replication-only report. Merged only into a node that made a full report of the same
   * era (`era`: that report's), and only when its `seq` is above the one held.
   * @returns null when merged, else why not.
   */
  fromReplicationReport(report: ReplicationReport, era: string | undefined, now: number): ReplicationRefusal | null {
    if (era === undefined) return 'no-report';
    if (era !== report.era) return 'other-era';
    const held = this.byNode.get(report.uuid);
    if (held !== undefined && held.seq !== null && report.seq <= held.seq) return 'older';
    this.byNode.set(report.uuid, { statuses: report.replication, seq: report.seq, receivedAt: now });
    return null;
  }
}

/**
 * An in-memory ControlChannel: records reports, and answers long-polls with the newest
 * desired configuration a test published (at once when it differs from `after`, else when
 * it changes or after `waitMs`). It passes control-channel.contract.ts, as the HTTP channel
 * against the real control service does.
 */
import type { AgentDesired } from '#common/channel.ts';
import { DroverError } from '#common/errors.ts';
import type { NodeReport, ReplicationReport } from '#common/model.ts';
import type { ControlChannel } from '../control-channel.ts';

export class FakeControlChannel implements ControlChannel {
  readonly reports: NodeReport[] = [];
  /** The replication-only reports merged, in order. */
  readonly replicationReports: ReplicationReport[] = [];
  /** When set, replicationReport() rejects with it. */
  replicationError: Error | null = null;
  /** The highest replication `seq` held per node (from either kind of report). */
  private readonly seqs = new Map<string, number>();
  private current: AgentDesired | null = null;
  private waiters: (() => void)[] = [];
  /** When set, report() rejects with it. */
  reportError: Error | null = null;

  publish(desired: AgentDesired): void {
    this.current = desired;
    for (const wake of this.waiters.splice(0)) wake();
  }

  async report(report: NodeReport): Promise<{ version: number }> {
    if (this.reportError) throw this.reportError;
    const newEra = this.reports.findLast((r) => r.uuid === report.uuid)?.era !== report.era;
    this.reports.push(structuredClone(report));
    const held = this.seqs.get(report.uuid);
    const seq = report.replication_seq;
    if (seq === undefined) this.seqs.delete(report.uuid);
    else if (newEra || held === undefined || seq > held) this.seqs.set(report.uuid, seq);
    return { version: this.current?.version ?? 0 };
  }

  /** Merged as the control service does: after a full report of the same era, when `seq` is newer. */
  async replicationReport(report: ReplicationReport): Promise<{ merged: boolean }> {
    if (this.replicationError) throw this.replicationError;
    const last = this.reports.findLast((r) => r.uuid === report.uuid);
    const held = this.seqs.get(report.uuid);
    if (last === undefined || last.era !== report.era || (held !== undefined && report.seq <= held)) return { merged: false };
    this.seqs.set(report.uuid, report.seq);
    this.replicationReports.push(structuredClone(report));
    return { merged: true };
  }

  async waitForDesired(_nodeUuid: string, after: number | null, waitMs: number, signal?: AbortSignal): Promise<AgentDesired> {
    for (;;) {
      if (signal?.aborted) throw new DroverError('DROVER_CONTROL_UNREACHABLE', 'aborted');
      if (this.current && this.current.version !== after) return structuredClone(this.current);
      // Unchanged: like the control service, answer with the same view after about waitMs.
      // Before a test published any view there is nothing to answer with, so it waits on.
      const timedOut = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(true), waitMs);
        timer.unref();
        const wake = () => {
          clearTimeout(timer);
          resolve(false);
        };
        this.waiters.push(wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
      if (timedOut && this.current && !signal?.aborted) return structuredClone(this.current);
    }
  }
}

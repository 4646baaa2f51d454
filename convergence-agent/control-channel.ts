/**
 * The agent's side of the channel to the control service (common/channel.ts): post the
 * node's report (and, between reports, its replication status alone), long-poll for the node's desired configuration. The HTTP implementation is
 * the one client (common/api-client.ts), which checks every answer against the route
 * table's schemas, so a control service of another version fails loudly
 * (DROVER_CONTROL_BAD_ANSWER, retryable), not subtly.
 */
import type { TlsIdentity } from '#common/tls-client.ts';
import { ApiClient } from '#common/api-client.ts';
import type { AgentDesired, ReplicationReportAnswer, ReportAnswer } from '#common/channel.ts';
import type { NodeReport, ReplicationReport } from '#common/model.ts';
import type { z } from 'zod';

type ReportAnswerBody = z.infer<typeof ReportAnswer>;
type ReplicationAnswerBody = z.infer<typeof ReplicationReportAnswer>;

export interface ControlChannel {
  /** Posts the node's report; resolves with the control service's version of this node's view. */
  report(report: NodeReport, signal?: AbortSignal): Promise<ReportAnswerBody>;
  /**
   * Posts this primary's replication status alone (docs/DESIGN.md §38); `merged: false` when
   * the control service holds a newer one (by `seq`), or knows the node from no full report of
   * this era yet.
   */
  replicationReport(report: ReplicationReport, signal?: AbortSignal): Promise<ReplicationAnswerBody>;
  /**
   * Long-poll: answers at once when the node's view differs from `after` (or at once when
   * `after` is null), else when it changes or after about `waitMs`.
   */
  waitForDesired(nodeUuid: string, after: number | null, waitMs: number, signal?: AbortSignal): Promise<AgentDesired>;
}

export class HttpControlChannel implements ControlChannel {
  private readonly client: ApiClient;

  /** `tls`: the node's certificate, for an https control service (docs/DESIGN.md §23). */
  constructor(controlUrl: string | readonly string[], requestTimeoutMs = 10_000, tls?: TlsIdentity) {
    // The loop retries on its own schedule; one attempt per call here.
    this.client = new ApiClient({ baseUrl: controlUrl, timeoutMs: requestTimeoutMs, getAttempts: 1, ...(tls ? { tls } : {}) });
  }

  report(report: NodeReport): Promise<ReportAnswerBody> {
    return this.client.report(report);
  }

  replicationReport(report: ReplicationReport, signal?: AbortSignal): Promise<ReplicationAnswerBody> {
    return this.client.replicationReport(report, signal);
  }

  waitForDesired(nodeUuid: string, after: number | null, waitMs: number, signal?: AbortSignal): Promise<AgentDesired> {
    return this.client.desired(nodeUuid, { ...(after === null ? {} : { after }), waitMs, ...(signal ? { signal } : {}) });
  }
}

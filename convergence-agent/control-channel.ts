/**
 * The agent's side of the channel to the control service (common/channel.ts): post the
 * node's report, long-poll for the node's desired configuration. The HTTP implementation is
 * the one client (common/api-client.ts), which checks every answer against the route
 * table's schemas, so a control service of another version fails loudly
 * (DROVER_CONTROL_BAD_ANSWER, retryable), not subtly.
 */
import type { TlsIdentity } from '#common/tls-client.ts';
import { ApiClient } from '#common/api-client.ts';
import type { AgentDesired, ReportAnswer } from '#common/channel.ts';
import type { NodeReport } from '#common/model.ts';
import type { z } from 'zod';

type ReportAnswerBody = z.infer<typeof ReportAnswer>;

export interface ControlChannel {
  /** Posts the node's report; resolves with the control service's version of this node's view. */
  report(report: NodeReport, signal?: AbortSignal): Promise<ReportAnswerBody>;
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

  waitForDesired(nodeUuid: string, after: number | null, waitMs: number, signal?: AbortSignal): Promise<AgentDesired> {
    return this.client.desired(nodeUuid, { ...(after === null ? {} : { after }), waitMs, ...(signal ? { signal } : {}) });
  }
}

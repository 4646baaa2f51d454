/**
 * The agent's side of the channel to the control service (common/channel.ts): post the
 * node's report, long-poll for the node's desired configuration. The HTTP implementation
 * wraps the typed client (common/api-client.ts) and checks every answer with the channel's
 * zod schemas, so a control service of another version fails loudly, not subtly.
 */
import { ApiClient } from '#common/api-client.ts';
import { AgentDesired, ReportAnswer } from '#common/channel.ts';
import { DroverError } from '#common/errors.ts';
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

  constructor(controlUrl: string, requestTimeoutMs = 10_000) {
    // The loop retries on its own schedule; one attempt per call here.
    this.client = new ApiClient({ baseUrl: controlUrl, timeoutMs: requestTimeoutMs, getAttempts: 1 });
  }

  async report(report: NodeReport): Promise<ReportAnswerBody> {
    return checked(ReportAnswer, await this.client.report(report), 'report');
  }

  async waitForDesired(nodeUuid: string, after: number | null, waitMs: number, signal?: AbortSignal): Promise<AgentDesired> {
    const answer = await this.client.desired(nodeUuid, { ...(after === null ? {} : { after }), waitMs, ...(signal ? { signal } : {}) });
    return checked(AgentDesired, answer, 'desired configuration');
  }
}

function checked<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new DroverError('DROVER_CONTROL_BAD_ANSWER', `the control service's ${what} is not valid: ${issues.join('; ')}`, {
    retryable: true,
    detail: { issues },
  });
}

/**
 * The agent's side of the channel to the control service (common/channel.ts): post the
 * node's report, long-poll for the node's desired configuration.
 *
 * XXX: the control-service helper is writing the typed client `common/api-client.ts`; when it
 * lands, HttpControlChannel should become a thin wrapper over it (the interface stays).
 */
import { AgentDesired, CHANNEL_PATHS, ReportAnswer } from '#common/channel.ts';
import { DroverError } from '#common/errors.ts';
import type { NodeReport } from '#common/model.ts';
import type { z } from 'zod';

type ReportAnswerBody = z.infer<typeof ReportAnswer>;

export interface ControlChannel {
  /** Posts the node's report; resolves with the control service's configuration version. */
  report(report: NodeReport, signal?: AbortSignal): Promise<ReportAnswerBody>;
  /**
   * Long-poll: answers at once when the control service's version differs from `after`
   * (or at once when `after` is null), else when it changes or after about `waitMs`.
   */
  waitForDesired(nodeUuid: string, after: number | null, waitMs: number, signal?: AbortSignal): Promise<AgentDesired>;
}

export class HttpControlChannel implements ControlChannel {
  private readonly base: string;

  constructor(controlUrl: string, private readonly requestTimeoutMs = 10_000) {
    this.base = controlUrl.replace(/\/+$/, '');
  }

  report(report: NodeReport, signal?: AbortSignal): Promise<ReportAnswerBody> {
    return this.request(ReportAnswer, CHANNEL_PATHS.report, this.requestTimeoutMs, signal, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(report),
    });
  }

  waitForDesired(nodeUuid: string, after: number | null, waitMs: number, signal?: AbortSignal): Promise<AgentDesired> {
    const query = new URLSearchParams({ wait_ms: String(waitMs) });
    if (after !== null) query.set('after', String(after));
    return this.request(AgentDesired, `${CHANNEL_PATHS.desired(nodeUuid)}?${query}`, waitMs + this.requestTimeoutMs, signal, {
      method: 'GET',
    });
  }

  private async request<S extends z.ZodType>(
    schema: S,
    path: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    init: RequestInit,
  ): Promise<z.infer<S>> {
    const url = `${this.base}${path}`;
    const timeout = AbortSignal.timeout(timeoutMs);
    let response: Response;
    try {
      response = await fetch(url, { ...init, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    } catch (err) {
      throw new DroverError('DROVER_CONTROL_UNREACHABLE', `control service at ${this.base} did not answer: ${describe(err)}`, {
        retryable: true,
        detail: { url },
        cause: err,
      });
    }
    const text = await response.text().catch(() => '');
    if (!response.ok) {
      throw new DroverError('DROVER_CONTROL_REJECTED', `control service answered ${response.status} to ${init.method} ${path}: ${text.slice(0, 500)}`, {
        retryable: response.status >= 500 || response.status === 429,
        detail: { url, status: response.status },
      });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new DroverError('DROVER_CONTROL_BAD_ANSWER', `control service sent non-JSON to ${path}`, { retryable: true, detail: { url }, cause: err });
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      const paths = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).slice(0, 5);
      throw new DroverError('DROVER_CONTROL_BAD_ANSWER', `control service answer to ${path} is not valid: ${paths.join('; ')}`, {
        retryable: true,
        detail: { url, issues: paths },
      });
    }
    return parsed.data;
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}

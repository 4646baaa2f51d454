/**
 * Where route tables come from: the control service's long-poll (common/channel.ts), behind
 * a small interface so the follower loop does not care how. `httpRouteSource` is the one
 * client (common/api-client.ts), which validates every answer with the `RouteTable` schema.
 */
import type { TlsIdentity } from '#common/tls-client.ts';
import { ApiClient } from '#common/api-client.ts';
import { RouteAck, type RouteTable } from '#common/channel.ts';
import { DroverError, isDroverError } from '#common/errors.ts';

export interface RouteSource {
  /**
   * Long-polls for the table: answers at once when the source's version differs from `after`
   * (null: no table yet), otherwise within about `waitMs` with the same version. Rejects with
   * a retryable DroverError when the source cannot be reached or answers badly.
   */
  poll(after: number | null, waitMs: number, signal: AbortSignal): Promise<RouteTable>;
  /** Confirms that this node has applied `ack.version` (its holds are in place). */
  ack(ack: RouteAck, signal: AbortSignal): Promise<void>;
}

/** Slack on top of `wait_ms` before a long-poll counts as hung. */
const POLL_SLACK_MS = 10_000;
const ACK_TIMEOUT_MS = 5_000;

/**
 * The control service's route endpoints at `baseUrl`. `nodeUuid` rides along on polls: the
 * control service counts a polling proxy as live, and waits for the acks of live proxies
 * before a cutover stops the source.
 */
export function httpRouteSource(baseUrl: string | readonly string[], nodeUuid?: string, tls?: TlsIdentity): RouteSource {
  // The follower retries on its own schedule: one attempt per call.
  const client = new ApiClient({ baseUrl, timeoutMs: POLL_SLACK_MS, getAttempts: 1, ...(tls ? { tls } : {}) });
  return {
    async poll(after, waitMs, signal) {
      return proxyRetryable(() => client.routes({ ...(after === null ? {} : { after }), waitMs, signal, ...(nodeUuid === undefined ? {} : { nodeUuid }) }));
    },
    async ack(ack, signal) {
      await proxyRetryable(() => client.call('ackRoutes', { body: RouteAck.parse(ack), signal, timeoutMs: ACK_TIMEOUT_MS }));
    },
  };
}

/**
 * The client's errors with the proxy's classification, unchanged from when it had its own
 * fetch code: besides no answer, a bad answer and a 5xx, a 404 or a 429 is retryable too.
 */
async function proxyRetryable<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const status = isDroverError(err) ? err.detail.status : undefined;
    if (isDroverError(err) && !err.retryable && (status === 404 || status === 429)) {
      throw new DroverError(err.code, err.message, { retryable: true, detail: err.detail, cause: err });
    }
    throw err;
  }
}

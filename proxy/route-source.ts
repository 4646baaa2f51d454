/**
 * Where route tables come from: the control service's long-poll (common/channel.ts), behind
 * a small interface so the follower loop does not care how. `httpRouteSource` speaks plain
 * HTTP with the global fetch and validates every answer with the `RouteTable` schema.
 */
import { CHANNEL_PATHS, RouteAck, RouteTable } from '#common/channel.ts';
import { DroverError } from '#common/errors.ts';

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
export function httpRouteSource(baseUrl: string, nodeUuid?: string): RouteSource {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    async poll(after, waitMs, signal) {
      const query = new URLSearchParams({ wait_ms: String(waitMs) });
      if (after !== null) query.set('after', String(after));
      if (nodeUuid !== undefined) query.set('node_uuid', nodeUuid);
      const url = `${base}${CHANNEL_PATHS.routes}?${query}`;
      const body = await request(url, { method: 'GET', signal: AbortSignal.any([signal, AbortSignal.timeout(waitMs + POLL_SLACK_MS)]) });
      const parsed = RouteTable.safeParse(body);
      if (!parsed.success) {
        throw new DroverError('DROVER_ROUTES_INVALID', `route table from ${url} does not match the schema`, {
          retryable: true,
          detail: { url, issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) },
        });
      }
      return parsed.data;
    },
    async ack(ack, signal) {
      const url = `${base}${CHANNEL_PATHS.routeAck}`;
      await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(RouteAck.parse(ack)),
        signal: AbortSignal.any([signal, AbortSignal.timeout(ACK_TIMEOUT_MS)]),
      });
    },
  };
}

async function request(url: string, init: RequestInit): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new DroverError('DROVER_CONTROL_UNREACHABLE', `cannot reach the control service at ${url}`, {
      retryable: true,
      detail: { url },
      cause: err,
    });
  }
  const text = await res.text().catch(() => '');
  if (!res.ok) {
    throw new DroverError('DROVER_CONTROL_HTTP', `control service answered ${res.status} to ${init.method} ${url}`, {
      retryable: res.status >= 500 || res.status === 429 || res.status === 404,
      detail: { url, status: res.status, body: text.slice(0, 500) },
    });
  }
  if (text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new DroverError('DROVER_ROUTES_INVALID', `control service answered ${init.method} ${url} with invalid JSON`, {
      retryable: true,
      detail: { url },
      cause: err,
    });
  }
}

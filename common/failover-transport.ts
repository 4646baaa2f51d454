/**
 * How the one API client reaches a control service when it knows several (docs/DESIGN.md
 * §29): it sends to the endpoint that answered last, and moves on to the next when that one
 * stops answering. The rules, so that moving on never does a write twice:
 *
 * - A GET (idempotent) moves on for any failure: no connection, no answer within the
 *   attempt's deadline, or a 5xx answer. Each endpoint is tried once per call.
 * - A write moves on only when it provably was not handled: the connection was refused or
 *   the host was unreachable (nothing was sent), or the answer was 503 (the service said it
 *   did not act: a follower without a leader, a busy store). After any other failure (a
 *   deadline passed, a 502/504, a connection cut mid-request) the write may have happened,
 *   so the error is thrown — the next call starts at the next endpoint.
 * - A 307/308 redirect (a follower pointing a write at its leader) is followed with the same
 *   method, body and client certificate, only to an endpoint of the configured list (else
 *   DROVER_CONTROL_REDIRECT_REFUSED), at most `MAX_REDIRECTS` times; the target becomes the
 *   endpoint the next call starts at.
 *
 * Each attempt has its own deadline, so one hung service costs one deadline, not the call.
 */
import { DroverError } from './errors.ts';
import type { FetchLike } from './tls-client.ts';

const MAX_REDIRECTS = 3;
/** Errors that happen before a request leaves: nothing was sent, a write may go elsewhere. */
const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

export interface Attempt {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | null;
  /** The caller's signal: aborting it ends the call, at whichever endpoint. */
  signal?: AbortSignal;
  /** Deadline of each attempt (ms). */
  timeoutMs?: number;
}

/** Why one endpoint did not do: what the error message and `detail.endpoints` list. */
interface Miss {
  url: string;
  why: string;
}

export class FailoverTransport {
  private current = 0;

  constructor(
    readonly endpoints: readonly string[],
    private readonly send: FetchLike,
  ) {
    if (endpoints.length === 0) throw new Error('FailoverTransport needs an endpoint');
  }

  /** The endpoint the next call starts at. */
  get preferred(): string {
    return this.endpoints[this.current]!;
  }

  /**
   * Sends the request by the rules above; resolves with the answer that ends the call (a
   * success, a 4xx, or the last endpoint's 5xx) and the endpoint that gave it.
   * @throws DroverError DROVER_CONTROL_UNREACHABLE (retryable) listing each endpoint and why;
   *   DROVER_CONTROL_REDIRECT_REFUSED for a redirect outside the list
   */
  async request(attempt: Attempt): Promise<{ response: Response; endpoint: string }> {
    const read = attempt.method === 'GET' || attempt.method === 'HEAD';
    const misses: Miss[] = [];
    const n = this.endpoints.length;
    const start = this.current;
    let lastError: unknown;
    for (let k = 0; k < n; k++) {
      const index = (start + k) % n;
      const isLast = k === n - 1;
      let outcome: { response: Response; endpoint: string };
      try {
        outcome = await this.follow(index, attempt);
      } catch (err) {
        if (err instanceof DroverError || attempt.signal?.aborted) throw err;
        lastError = err;
        const why = reasonOf(err);
        misses.push({ url: this.endpoints[index]!, why });
        this.current = (index + 1) % n;
        if (!read && !NOT_SENT.has(why)) break;
        continue;
      }
      const status = outcome.response.status;
      if (status >= 500 && !isLast && (read || status === 503)) {
        misses.push({ url: outcome.endpoint, why: `HTTP ${status}` });
        await outcome.response.body?.cancel().catch(() => undefined);
        this.current = (this.endpoints.indexOf(outcome.endpoint) + 1) % n;
        continue;
      }
      if (status === 502 || status === 503 || status === 504) this.current = (this.endpoints.indexOf(outcome.endpoint) + 1) % n;
      else this.current = this.endpoints.indexOf(outcome.endpoint);
      return outcome;
    }
    throw unreachable(attempt, misses, lastError);
  }

  /** Sends to endpoint `index`, following redirects within the list. */
  private async follow(index: number, attempt: Attempt): Promise<{ response: Response; endpoint: string }> {
    let endpoint = this.endpoints[index]!;
    let path = attempt.path;
    for (let hop = 0; ; hop++) {
      const signals = [attempt.signal, attempt.timeoutMs === undefined ? undefined : AbortSignal.timeout(attempt.timeoutMs)].filter((s): s is AbortSignal => s !== undefined);
      const response = await this.send(endpoint + path, {
        method: attempt.method,
        headers: attempt.headers,
        body: attempt.body,
        signal: signals.length === 0 ? null : AbortSignal.any(signals),
      });
      if (response.status !== 307 && response.status !== 308) return { response, endpoint };
      await response.body?.cancel().catch(() => undefined);
      const location = response.headers.get('location');
      let target: URL | null = null;
      try {
        target = location === null ? null : new URL(location, endpoint + path);
      } catch {
        target = null;
      }
      if (target === null || !this.endpoints.includes(target.origin)) {
        throw new DroverError('DROVER_CONTROL_REDIRECT_REFUSED', `the control service at ${endpoint} redirected ${attempt.method} ${path} to ${location ?? '(no Location)'}, which is not one of the configured control services (${this.endpoints.join(', ')})`, {
          detail: { method: attempt.method, path, endpoint, location, endpoints: [...this.endpoints] },
        });
      }
      if (hop + 1 >= MAX_REDIRECTS) {
        throw new DroverError('DROVER_CONTROL_REDIRECT_REFUSED', `${attempt.method} ${attempt.path} was redirected ${MAX_REDIRECTS} times (last from ${endpoint} to ${target.origin}); the control services disagree on who leads`, {
          detail: { method: attempt.method, path: attempt.path, endpoint, location, endpoints: [...this.endpoints] },
        });
      }
      endpoint = target.origin;
      path = target.pathname + target.search;
    }
  }
}

/** The low-level reason of a failed send: the socket's code, or the abort's name (TimeoutError). */
function reasonOf(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string; name?: string; message?: string } };
  return e.cause?.code ?? (e.name === 'TypeError' ? (e.cause?.name ?? e.cause?.message ?? 'fetch failed') : (e.name ?? String(err)));
}

function unreachable(attempt: Attempt, misses: Miss[], cause: unknown): DroverError {
  const { method, path } = attempt;
  const message =
    misses.length === 1
      ? `control service at ${misses[0]!.url} did not answer ${method} ${path} (${misses[0]!.why})`
      : `no control service answered ${method} ${path}: ${misses.map((m) => `${m.url} (${m.why})`).join(', ')}`;
  return new DroverError('DROVER_CONTROL_UNREACHABLE', message, { retryable: true, cause, detail: { method, path, endpoints: misses } });
}

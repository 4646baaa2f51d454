/**
 * The three probe mechanisms, each answering success, failure or unknown:
 * - http: GET, success when 200 ≤ status < 400 (redirects are not followed: a 3xx already counts);
 * - tcp: success when the connection opens, even if the peer closes it at once. With `send`, that
 *   string is written (UTF-8) once connected; with `expect`, success only once the answer so far
 *   contains it (HAProxy's `tcp-check send` / `tcp-check expect string`): behind docker-proxy,
 *   which accepts before the application listens, a bare connect proves nothing, while
 *   `send: "PING\r\n", expect: "+PONG"` is Redis answering with its data loaded (a loading
 *   Redis answers -LOADING, and such a probe fails at its timeout or when the peer closes);
 * - exec: success when the command (no shell) exits 0; a command that overruns its timeout
 *   failed; a docker that cannot be asked, or a container that is not running (a crash is the
 *   restart policy's business, not the health check's), is `unknown` (no action, as Kubernetes does).
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { runAfter, systemClock, type Clock } from '#common/clock.ts';
import { isDroverError } from '#common/errors.ts';
import type { ContainerRuntime } from '../container-runtime.ts';
import type { ProbeResult } from './probe-state.ts';

/** The timeouts run on `clock` (default the system clock), like every wait in drover. */
export function httpProbe(host: string, port: number, path: string, timeoutMs: number, clock: Clock = systemClock): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      cancelTimeout();
      req.destroy();
      resolve(result);
    };
    const req = request({ host, port, path, method: 'GET', headers: { 'user-agent': 'drover-probe', accept: '*/*' }, agent: false });
    const cancelTimeout = runAfter(clock, timeoutMs, () => finish({ outcome: 'failure', detail: `no answer within ${timeoutMs} ms` }));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      finish(status >= 200 && status < 400 ? { outcome: 'success', detail: null } : { outcome: 'failure', detail: `HTTP ${status}` });
    });
    req.on('error', (err) => finish({ outcome: 'failure', detail: err.message }));
    req.end();
  });
}

/** What a tcp probe writes once connected, and what it waits for in the answer. */
export interface TcpProbeOptions {
  /** Written once connected, as UTF-8. */
  send?: string | undefined;
  /** Success only once the bytes received so far contain it (its UTF-8 bytes; ASCII in practice). */
  expect?: string | undefined;
}

/** How many of the last bytes received a probe keeps to look for `expect` in (it is at most 1024 characters). */
const KEPT_BYTES = 4096;
/** How much of an answer a failure shows, after dropping what is not printable. */
const EXCERPT_CHARS = 80;

/**
 * Connects to host:port; then, if asked, sends and waits for the expected string. Fails with
 * a detail that names what was missing and, when something came, a short printable excerpt
 * of it (`no "+PONG" within 2000 ms; answered "-LOADING Redis is loading the dataset in
 * memory"`). `timeoutMs` bounds the whole probe. The socket is always destroyed and the timeout
 * cancelled when it settles; never rejects.
 */
export function tcpProbe(host: string, port: number, timeoutMs: number, options: TcpProbeOptions = {}, clock: Clock = systemClock): Promise<ProbeResult> {
  // `expect` must come in the answer's first line (unless it spans lines itself): a loading
  // Redis answers PING with one -LOADING line and then waits, and waiting for more would hold
  // the probe until its timeout — the next probe, 50 ms later in a start, is what sees PONG.
  const { send, expect } = options;
  const wanted = expect === undefined ? null : Buffer.from(expect, 'utf8');
  const what = expect === undefined ? '' : quoted(expect);
  const lineBound = expect !== undefined && !expect.includes('\n');
  return new Promise((resolve) => {
    let settled = false;
    let connected = false;
    let sent = send === undefined;
    let found = wanted === null;
    let head = Buffer.alloc(0); // the answer's first bytes, for a failure's excerpt
    let tail = Buffer.alloc(0); // the last bytes received, where `expect` is looked for
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      cancelTimeout();
      socket.destroy();
      resolve(result);
    };
    const fail = (why: string): void =>
      finish({ outcome: 'failure', detail: head.length === 0 ? why : `${why}; answered "${excerpt(head)}"` });
    const pending = (): string => (!sent ? 'sending' : what);
    const settle = (): void => {
      if (connected && sent && found) finish({ outcome: 'success', detail: null });
    };
    const socket = connect({ host, port });
    const cancelTimeout = runAfter(clock, timeoutMs, () =>
      fail(!connected ? `no connection within ${timeoutMs} ms` : !sent ? `could not send within ${timeoutMs} ms` : `no ${what} within ${timeoutMs} ms`),
    );
    socket.on('connect', () => {
      connected = true;
      if (send !== undefined) {
        socket.write(send, 'utf8', (err) => {
          if (err) return; // 'error' follows and says why
          sent = true;
          settle();
        });
      }
      settle();
    });
    if (wanted !== null) {
      socket.on('data', (chunk: Buffer) => {
        if (head.length < EXCERPT_CHARS * 2) head = Buffer.from(Buffer.concat([head, chunk]).subarray(0, EXCERPT_CHARS * 2));
        if (found) return;
        const seen = Buffer.concat([tail, chunk]);
        if (seen.includes(wanted)) {
          found = true;
          settle();
          return;
        }
        if (lineBound && seen.includes(NEWLINE)) return fail(`first line of the answer has no ${what}`);
        // A match may start in what came before and end in the next chunk.
        tail = Buffer.from(seen.subarray(Math.max(0, seen.length - Math.max(KEPT_BYTES, wanted.length))));
      });
    }
    // The peer closed (or reset) before the probe got what it waits for.
    socket.on('end', () => fail(`connection closed before ${pending()}`));
    socket.on('close', () => fail(`connection closed before ${pending()}`));
    socket.on('error', (err) => fail(connected ? `${err.message} before ${pending()}` : err.message));
  });
}

const NEWLINE = Buffer.from('\n');

function quoted(s: string): string {
  const shown = s.length > 40 ? `${s.slice(0, 39)}…` : s;
  return JSON.stringify(shown);
}

/** Printable ASCII only, each run of spaces and anything else as one space, at most EXCERPT_CHARS characters. */
function excerpt(bytes: Buffer): string {
  const text = bytes.toString('latin1').replace(/[^\x21-\x7e]+/g, ' ').trim();
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS - 1)}…` : text;
}

export async function execProbe(
  runtime: Pick<ContainerRuntime, 'exec'>,
  containerId: string,
  command: string[],
  timeoutMs: number,
): Promise<ProbeResult> {
  try {
    const { exitCode } = await runtime.exec(containerId, command, timeoutMs);
    return exitCode === 0 ? { outcome: 'success', detail: null } : { outcome: 'failure', detail: `exit code ${exitCode}` };
  } catch (err) {
    if (isDroverError(err, 'DROVER_EXEC_TIMEOUT')) return { outcome: 'failure', detail: `did not finish within ${timeoutMs} ms` };
    return { outcome: 'unknown', detail: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The three probe mechanisms, each answering success, failure or unknown:
 * - http: GET, success when 200 ≤ status < 400 (redirects are not followed: a 3xx already counts);
 * - tcp: success when the connection opens, even if the peer closes it at once;
 * - exec: success when the command (no shell) exits 0; a command that overruns its timeout
 *   failed; a docker that cannot be asked, or a container that is not running (a crash is the
 *   restart policy's business, not the health check's), is `unknown` (no action, as Kubernetes does).
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { isDroverError } from '#common/errors.ts';
import type { ContainerRuntime } from '../container-runtime.ts';
import type { ProbeResult } from './probe-state.ts';

export function httpProbe(host: string, port: number, path: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const req = request({ host, port, path, method: 'GET', headers: { 'user-agent': 'drover-probe', accept: '*/*' }, agent: false });
    const timer = setTimeout(() => finish({ outcome: 'failure', detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      finish(status >= 200 && status < 400 ? { outcome: 'success', detail: null } : { outcome: 'failure', detail: `HTTP ${status}` });
    });
    req.on('error', (err) => finish({ outcome: 'failure', detail: err.message }));
    req.end();
  });
}

export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const socket = connect({ host, port });
    const timer = setTimeout(() => finish({ outcome: 'failure', detail: `no connection within ${timeoutMs} ms` }), timeoutMs);
    socket.on('connect', () => finish({ outcome: 'success', detail: null }));
    socket.on('error', (err) => finish({ outcome: 'failure', detail: err.message }));
  });
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

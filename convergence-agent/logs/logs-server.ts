/**
 * The agent's logs endpoint (docs/DESIGN.md §27): HTTPS on the node's address, mutual TLS
 * with the cluster CA, and only the control service's certificate (O=drover-control) may
 * call it — users reach it through the control service's `GET
 * /v1/drover/applications/<name>/logs`, which applies their access and finds the node the
 * application runs on now.
 *
 *   GET /v1/agent/applications/<name>/logs?tail=N&follow=true
 *
 * answers newline-delimited JSON, one `{"stream":"stdout"|"stderr","text":…}` per line of
 * the container's output; 404 when this node has no container of that application. A
 * follow goes on until the caller goes away or the agent stops.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ROLE_ORGANIZATION } from '#common/identity.ts';
import type { Logger } from '#common/log.ts';
import { AppName } from '#common/model.ts';
import type { TlsIdentity } from '#common/tls-client.ts';
import { LogLines } from './log-lines.ts';

/** drover's default port for it, beside the control service's 4523. */
export const DEFAULT_LOGS_PORT = 4526;
export const LOGS_PATH = /^\/v1\/agent\/applications\/([^/?]+)\/logs$/;
const MAX_TAIL = 100_000;

/** Where the output comes from: the node's dockerd (docker.ts `logs`). */
export type LogSource = (app: string, options: { tail?: number; follow: boolean; signal: AbortSignal }) => Promise<{ stream: AsyncIterable<Buffer> | Iterable<Buffer>; multiplexed: boolean } | null>;

export class LogsServer {
  private readonly server: Server;
  private readonly stopping = new AbortController();

  constructor(private readonly options: { identity: TlsIdentity; host: string; port: number; source: LogSource; log: Logger }) {
    this.server = createServer(
      { ca: options.identity.ca, cert: options.identity.cert, key: options.identity.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
      (request, response) => void this.serve(request, response),
    );
  }

  /** Listens; answers the port (the one chosen, with port 0). */
  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.stopping.abort();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async serve(request: import('node:http').IncomingMessage, response: import('node:http').ServerResponse): Promise<void> {
    const fail = (status: number, code: string, description: string) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ code, description }));
    };
    const subject = (request.socket as TLSSocket).getPeerCertificate?.()?.subject as { O?: string } | undefined;
    if (subject?.O !== ROLE_ORGANIZATION.control) return fail(403, 'DROVER_FORBIDDEN', "only the control service's certificate may read logs here");
    const url = new URL(request.url ?? '/', 'https://agent');
    const match = LOGS_PATH.exec(url.pathname);
    if (request.method !== 'GET' || match === null) return fail(404, 'DROVER_NOT_FOUND', 'no such route');
    const app = decodeURIComponent(match[1]!);
    if (!AppName.safeParse(app).success) return fail(400, 'DROVER_INVALID_REQUEST', `"${app}" is not an application name`);
    const tailText = url.searchParams.get('tail');
    const tail = tailText === null ? undefined : Number(tailText);
    if (tail !== undefined && (!Number.isInteger(tail) || tail < 0 || tail > MAX_TAIL)) return fail(400, 'DROVER_INVALID_REQUEST', `tail must be a whole number from 0 to ${MAX_TAIL}`);
    const follow = url.searchParams.get('follow') === 'true';
    const gone = new AbortController();
    response.once('close', () => gone.abort());
    const signal = AbortSignal.any([gone.signal, this.stopping.signal]);
    try {
      const found = await this.options.source(app, { ...(tail === undefined ? {} : { tail }), follow, signal });
      if (found === null) return fail(404, 'DROVER_APPLICATION_NOT_RUNNING', `no container of "${app}" on this node`);
      response.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-cache' });
      const lines = new LogLines(found.multiplexed);
      const send = (list: { stream: string; text: string }[]) => {
        for (const line of list) response.write(`${JSON.stringify(line)}\n`);
      };
      for await (const chunk of found.stream) {
        send(lines.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
        if (signal.aborted) break;
      }
      send(lines.end());
      response.end();
    } catch (err) {
      if (signal.aborted) {
        response.destroy();
        return;
      }
      this.options.log.warn({ err, app }, 'logs not served');
      if (!response.headersSent) fail(502, 'DROVER_LOGS_UNAVAILABLE', `docker did not give the logs of "${app}": ${(err as Error).message}`);
      else response.destroy();
    }
  }
}

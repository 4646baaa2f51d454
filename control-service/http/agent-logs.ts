/**
 * The control service as a client of the agents' logs endpoints (docs/DESIGN.md §27,
 * convergence-agent/logs/logs-server.ts): HTTPS with the control service's own certificate;
 * the agent is trusted when the cluster CA signed its certificate and that certificate is a
 * node's (O=drover-node) — nodes are reached by the address they report, which their
 * certificates do not name.
 */
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { DroverError } from '#common/errors.ts';
import { ROLE_ORGANIZATION } from '#common/identity.ts';
import type { TlsIdentity } from '#common/tls-client.ts';

export interface AgentLogsRequest {
  host: string;
  port: number;
  app: string;
  tail?: number;
  follow: boolean;
  signal: AbortSignal;
}

/** Opens the agent's answer; its status and body are the caller's to read. */
export type AgentLogs = (req: AgentLogsRequest) => Promise<IncomingMessage>;

/** How long an agent may take to answer (the headers; a follow's body then runs on). */
const CONNECT_MS = 10_000;

export function agentLogsClient(identity: TlsIdentity): AgentLogs {
  return (req) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      const search = new URLSearchParams({ follow: String(req.follow), ...(req.tail === undefined ? {} : { tail: String(req.tail) }) });
      const unreachable = (why: string, cause?: unknown) =>
        new DroverError('DROVER_LOGS_UNAVAILABLE', `the agent at ${req.host}:${req.port} did not give the logs of "${req.app}" (${why})`, { retryable: true, cause, detail: { host: req.host, port: req.port } });
      const outgoing = request(
        {
          host: req.host,
          port: req.port,
          method: 'GET',
          path: `/v1/agent/applications/${encodeURIComponent(req.app)}/logs?${search}`,
          ca: identity.ca,
          cert: identity.cert,
          key: identity.key,
          minVersion: 'TLSv1.3',
          signal: req.signal,
          timeout: CONNECT_MS,
          checkServerIdentity: (_host: string, cert: PeerCertificate) =>
            cert.subject?.O === ROLE_ORGANIZATION.node ? undefined : new Error(`its certificate is not a node's (O=${String(cert.subject?.O)})`),
        },
        (answer) => {
          outgoing.setTimeout(0);
          resolve(answer);
        },
      );
      outgoing.on('timeout', () => outgoing.destroy(unreachable('no answer in time')));
      outgoing.on('error', (err: NodeJS.ErrnoException) => reject(unreachable(err.code ?? err.message, err)));
      outgoing.end();
    });
}

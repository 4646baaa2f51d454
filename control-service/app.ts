/**
 * Builds the control service's fastify app from its dependencies; never listens (main.ts
 * does), so tests drive it with `inject()` (fastify's testing guide).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { ServerOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { ROUTES } from '#common/api-routes.ts';
import { DroverError } from '#common/errors.ts';
import { identityOfSubject, type Identity } from '#common/identity.ts';
import type { Logger } from '#common/log.ts';
import { applicationRoutes } from './api/applications.ts';
import { channelRoutes } from './api/channel.ts';
import { containerRoutes } from './api/containers.ts';
import { datasetRoutes } from './api/datasets.ts';
import { deployRoutes } from './api/deploy.ts';
import { backupRoutes, clusterIdOf } from './api/backup.ts';
import { eventRoutes } from './api/events.ts';
import { leaseRoutes } from './api/leases.ts';
import { logRoutes } from './api/logs.ts';
import type { AgentLogs } from './http/agent-logs.ts';
import { nodeRoutes } from './api/nodes.ts';
import { replicationRoutes } from './api/replication.ts';
import type { Control } from './control.ts';
import { authorize, PLAIN_LOOPBACK } from './http/authorize.ts';
import { handleError } from './http/errors.ts';
import type { RevokedList } from './http/tls.ts';
import { openApiDocument } from './http/openapi.ts';
import { jsonBodyParser, Router, type Guard } from './http/router.ts';
import { observeRequests } from './http/request-log.ts';
import { sendFollowersToLeader } from './http/follower.ts';
import { NO_CONTROL_METRICS, type ControlMetrics } from './metrics.ts';
import { refuseCrossSite } from './ui/cross-site.ts';
import { dashboardRoutes } from './ui/routes.ts';

export interface AppOptions {
  control: Control;
  log: Logger;
  /** drover's version, for `/v1/version` and the OpenAPI document. */
  version: string;
  /** Largest request body, in bytes (deploy allows more). Default 1 MiB. */
  bodyLimit?: number;
  /**
   * Who sent a request. Default: over TLS, the role and name in the verified client
   * certificate (common/identity.ts; null: a certificate of no client role, refused 403);
   * without TLS — only a control service asked to listen plain on loopback, or inject() in
   * tests — a user. Tests pass their own to drive the node rules through inject().
   */
  identify?: (request: FastifyRequest) => Identity | null;
  /** Serve HTTPS with these options (http/tls.ts `serverTlsOptions`: mutual TLS); absent: plain HTTP. */
  https?: ServerOptions;
  /** Revoked client certificates (http/tls.ts): refused at the handshake and on every request. */
  revoked?: RevokedList;
  /** How the control service reads an agent's logs (http/agent-logs.ts); absent: `logs` answers DROVER_LOGS_UNAVAILABLE. */
  agentLogs?: AgentLogs;
  /** Where API requests are timed (docs/DESIGN.md §25); none by default. */
  metrics?: ControlMetrics;
}

/** The identity in a request's verified client certificate; plain (no TLS): a user. */
export function certificateIdentity(request: FastifyRequest): Identity | null {
  const socket = request.raw.socket as Partial<TLSSocket>;
  if (socket.encrypted !== true || typeof socket.getPeerCertificate !== 'function') return PLAIN_LOOPBACK;
  return identityOfSubject(socket.getPeerCertificate().subject as { O?: string; CN?: string } | undefined);
}

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export function buildApp(options: AppOptions): FastifyInstance {
  // fastify types an https app apart from an http one; below the listener they are the same.
  const app = Fastify({
    ...(options.https ? { https: options.https } : {}),
    loggerInstance: options.log.child({ subsystem: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Long-polls and event streams must not hold a shutdown: they are ended in preClose.
    forceCloseConnections: true,
  }) as unknown as FastifyInstance;
  if (options.https && options.revoked) options.revoked.guard(app.server as unknown as import('node:tls').Server);
  observeRequests(app, options.metrics ?? NO_CONTROL_METRICS);
  sendFollowersToLeader(app, options.control.leadership);
  const shutdown = new AbortController();
  app.addHook('preClose', async () => {
    shutdown.abort();
    options.control.views.wakeAll();
    options.control.routes.wakeAll();
  });
  // Server-Timing (a standard header): the time spent in this process, so a client can
  // tell server work from network and queueing (bench:control reports both).
  app.addHook('onSend', async (_request, reply) => {
    reply.header('server-timing', `app;dur=${reply.elapsedTime.toFixed(2)}`);
  });
  // Flocker's reading of bodies: none expected, none read (an empty JSON body on a DELETE).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, jsonBodyParser(app));
  app.setErrorHandler(handleError);
  // A browser holding a user's certificate must not be made to write for another site (docs/DESIGN.md §26).
  app.addHook('onRequest', refuseCrossSite);
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ description: `No endpoint ${request.method} ${request.url.split('?')[0]}.`, code: 'DROVER_NOT_FOUND' });
  });

  const { control } = options;
  const identify = options.identify ?? certificateIdentity;
  const guard: Guard = {
    role: (key, request) => {
      const serial = (request.raw.socket as Partial<TLSSocket>).getPeerCertificate?.()?.serialNumber;
      if (serial && options.revoked?.has(serial)) {
        throw new DroverError('DROVER_FORBIDDEN', `${ROUTES[key].method} ${ROUTES[key].path} is refused: the client certificate (serial ${serial}) is revoked.`, { detail: { route: key, rule: 'revoked' } });
      }
      const identity = identify(request);
      if (identity === null) {
        throw new DroverError('DROVER_FORBIDDEN', `${ROUTES[key].method} ${ROUTES[key].path} is refused: the client certificate carries no drover role (subject O=drover-user or O=drover-node).`, {
          detail: { route: key, rule: 'certificate-role' },
        });
      }
      if (identity.role === 'node' && ROUTES[key].access.role === 'user') authorize(key, identity, { params: {}, query: {}, body: undefined }, control.desired, undefined);
      return identity;
    },
    rules: (key, identity, input) => {
      if (identity.role === 'node') authorize(key, identity, input, control.desired, control.nodeOfCertificate(identity.name));
    },
  };
  const router = new Router(app, guard);
  nodeRoutes(router, control, options.version);
  datasetRoutes(router, control);
  containerRoutes(router, control);
  leaseRoutes(router, control);
  applicationRoutes(router, control);
  replicationRoutes(router, control);
  deployRoutes(router, control);
  backupRoutes(router, control, clusterIdOf(options.https?.ca as string | Buffer | undefined));
  channelRoutes(router, control, shutdown.signal);
  eventRoutes(router, control, shutdown.signal);
  dashboardRoutes(router);
  logRoutes(router, control, options.agentLogs, shutdown.signal);

  let document: unknown = null;
  router.handle('openapi', async () => (document ??= openApiDocument(options.version)));
  return app;
}

/**
 * Builds the control service's fastify app from its dependencies; never listens (main.ts
 * does), so tests drive it with `inject()` (fastify's testing guide).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '#common/log.ts';
import { applicationRoutes } from './api/applications.ts';
import { channelRoutes } from './api/channel.ts';
import { containerRoutes } from './api/containers.ts';
import { datasetRoutes } from './api/datasets.ts';
import { deployRoutes } from './api/deploy.ts';
import { eventRoutes } from './api/events.ts';
import { leaseRoutes } from './api/leases.ts';
import { nodeRoutes } from './api/nodes.ts';
import { replicationRoutes } from './api/replication.ts';
import type { Control } from './control.ts';
import { handleError } from './http/errors.ts';
import { openApiDocument } from './http/openapi.ts';
import { jsonBodyParser, Router } from './http/router.ts';
import { observeRequests } from './http/request-log.ts';
import { NO_CONTROL_METRICS, type ControlMetrics } from './metrics.ts';

export interface AppOptions {
  control: Control;
  log: Logger;
  /** drover's version, for `/v1/version` and the OpenAPI document. */
  version: string;
  /** Largest request body, in bytes (deploy allows more). Default 1 MiB. */
  bodyLimit?: number;
  /** Where API requests are timed (docs/DESIGN.md §25); none by default. */
  metrics?: ControlMetrics;
}

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export function buildApp(options: AppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.log.child({ subsystem: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Long-polls and event streams must not hold a shutdown: they are ended in preClose.
    forceCloseConnections: true,
  });
  observeRequests(app, options.metrics ?? NO_CONTROL_METRICS);
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
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ description: `No endpoint ${request.method} ${request.url.split('?')[0]}.`, code: 'DROVER_NOT_FOUND' });
  });

  const router = new Router(app);
  const { control } = options;
  nodeRoutes(router, control, options.version);
  datasetRoutes(router, control);
  containerRoutes(router, control);
  leaseRoutes(router, control);
  applicationRoutes(router, control);
  replicationRoutes(router, control);
  deployRoutes(router, control);
  channelRoutes(router, control, shutdown.signal);
  eventRoutes(router, control, shutdown.signal);

  let document: unknown = null;
  router.handle('openapi', async () => (document ??= openApiDocument(options.version)));
  return app;
}

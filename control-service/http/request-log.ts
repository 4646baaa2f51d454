/**
 * Per request: its correlation id, its log record and its metrics (docs/DESIGN.md §25).
 *
 * The id is the caller's `x-drover-corr` when it sends a sane one (an agent posting a
 * migration's step sends the migration's id), else a fresh one; it is on every record of
 * the request (`request.log`) and answered in the same header. Writes are logged at info
 * when answered; reads, and the channel's heartbeats (an agent's report and a proxy's route
 * ack, every second per node), at debug. Every answer is timed by route template, method
 * and status.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { CORR_HEADER, CORR_PATTERN } from '#common/log.ts';
import type { ControlMetrics } from '../metrics.ts';

const HEARTBEATS = new Set(['/v1/drover/agents/report', '/v1/drover/routes/ack']);

export function observeRequests(app: FastifyInstance, metrics: ControlMetrics): void {
  app.addHook('onRequest', async (request, reply) => {
    const sent = request.headers[CORR_HEADER];
    const corr = typeof sent === 'string' && CORR_PATTERN.test(sent) ? sent : randomBytes(6).toString('hex');
    request.log = request.log.child({ corr }) as FastifyBaseLogger;
    void reply.header(CORR_HEADER, corr);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    metrics.request(route, request.method, reply.statusCode, seconds);
    const write = request.method !== 'GET' && request.method !== 'HEAD' && !HEARTBEATS.has(route);
    const fields = { method: request.method, route, url: request.url, code: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 };
    if (write) request.log.info(fields, 'request answered');
    else request.log.debug(fields, 'request answered');
  });
}

/**
 * The agent channel (common/channel.ts): reports in, per-node desired configuration and the
 * route table out (long-polls answered within milliseconds of a change), route acks, and
 * migration steps with generation fencing.
 */
import { z } from 'zod';
import { ErrorBody, RouteAcksAnswer } from '#common/api.ts';
import { AgentDesired, CHANNEL_PATHS, MigrationUpdate, NodeReport, ReportAnswer, RouteAck, RouteTable } from '#common/channel.ts';
import { Migration, Uuid } from '#common/model.ts';
import { DroverError } from '#common/errors.ts';
import type { Control } from '../control.ts';
import { applyMigrationUpdate } from '../desired/migrations.ts';
import { LongPollQuery, pollSignal } from '../http/long-poll.ts';
import { sendJson, type Router } from '../http/router.ts';

const error = (description: string) => ({ description, schema: ErrorBody });

export const REPORT_BODY_LIMIT = 32 * 1024 * 1024;

export function channelRoutes(router: Router, control: Control, shutdown: AbortSignal): void {
  router.route(
    {
      method: 'POST',
      url: CHANNEL_PATHS.report,
      tag: 'channel',
      summary: "An agent's report: registers or refreshes its node and its observed state",
      body: NodeReport,
      rawBody: true,
      // A node holding thousands of datasets, each with its snapshots, reports megabytes.
      bodyLimit: REPORT_BODY_LIMIT,
      answers: { 200: { description: "the version of the node's desired view", schema: ReportAnswer }, 400: error('bad report') },
    },
    async ({ body }) => {
      if (typeof body !== 'string') throw new DroverError('DROVER_INVALID_REQUEST', 'A report is a JSON body (content-type application/json).');
      return control.reportText(body);
    },
  );

  router.route(
    {
      method: 'GET',
      url: '/v1/drover/agents/:node_uuid/desired',
      tag: 'channel',
      summary: "Long-poll of a node's desired configuration: answers when its version differs from `after`, or after `wait_ms`",
      params: z.object({ node_uuid: Uuid }),
      query: LongPollQuery,
      answers: { 200: { description: 'the part of the desired configuration that concerns the node', schema: AgentDesired } },
    },
    async ({ params, query, reply }) => {
      if (query.after !== undefined) await control.views.wait(params.node_uuid, query.after, query.wait_ms, pollSignal(reply, shutdown));
      return sendJson(reply, control.views.get(params.node_uuid).body);
    },
  );

  router.route(
    {
      method: 'GET',
      url: CHANNEL_PATHS.routes,
      tag: 'channel',
      summary: 'Long-poll of the route table (proxies); `node_uuid` marks the proxy live for route acks',
      query: LongPollQuery.extend({ node_uuid: Uuid.optional() }),
      answers: { 200: { description: 'routes', schema: RouteTable } },
    },
    async ({ query, reply }) => {
      if (query.after !== undefined) await control.routes.wait(query.after, query.wait_ms, pollSignal(reply, shutdown), query.node_uuid);
      return sendJson(reply, control.routes.get().body);
    },
  );

  router.route(
    { method: 'POST', url: CHANNEL_PATHS.routeAck, tag: 'channel', summary: 'A proxy has applied a route table version', body: RouteAck, answers: { 200: { description: 'noted', schema: z.object({}) } } },
    async ({ body }) => {
      control.routes.ack(body.node_uuid, body.version);
      return {};
    },
  );

  router.route(
    {
      method: 'GET',
      url: '/v1/drover/routes/acks',
      tag: 'channel',
      summary: 'Whether every live proxy has applied route table version `version` or newer (asked before a cutover stops the source)',
      query: z.object({ version: z.coerce.number().int().min(0) }).strict(),
      answers: { 200: { description: 'ack status', schema: RouteAcksAnswer } },
    },
    async ({ query }) => control.routes.acks(query.version),
  );

  router.route(
    {
      method: 'POST',
      url: '/v1/drover/migrations/:id/update',
      tag: 'migrations',
      summary: "An agent's migration step: refused unless it carries the migration's generation, comes from the node whose turn it is, and follows the phase order",
      params: z.object({ id: Uuid }),
      body: MigrationUpdate,
      answers: { 200: { description: 'the migration after the step', schema: Migration }, 404: error('no such migration'), 409: error('stale generation, wrong node or illegal phase change') },
    },
    async ({ params, body }) => {
      let migration: Migration | undefined;
      let previous: string | undefined;
      await control.change((d, ctx) => {
        const out = applyMigrationUpdate(d, params.id, body, ctx.now);
        previous = d.migrations.find((m) => m.id === params.id)?.phase;
        migration = out.migration;
        return out.desired;
      });
      if (previous !== migration!.phase) control.log.info({ migration: params.id, from: previous, phase: migration!.phase, error: migration!.error }, 'migration advanced');
      return migration;
    },
  );
}

/**
 * The agent channel (common/channel.ts): reports in (full, and replication-only), per-node desired configuration and the
 * route table out (long-polls answered within milliseconds of a change), route acks, and
 * migration steps with generation fencing.
 */
import type { Application, Migration } from '#common/model.ts';
import { DroverError } from '#common/errors.ts';
import type { Control } from '../control.ts';
import { applyMigrationUpdate } from '../desired/migrations.ts';
import { pollSignal } from '../http/long-poll.ts';
import { sendJson, type Router } from '../http/router.ts';

export const REPORT_BODY_LIMIT = 32 * 1024 * 1024;

export function channelRoutes(router: Router, control: Control, shutdown: AbortSignal): void {
  // A node holding thousands of datasets, each with its snapshots, reports megabytes: a larger limit.
  router.handle('report', async ({ body, identity }) => {
    if (typeof body !== 'string') throw new DroverError('DROVER_INVALID_REQUEST', 'A report is a JSON body (content-type application/json).');
    return control.reportText(body, identity);
  }, { bodyLimit: REPORT_BODY_LIMIT, rawBody: true });

  // A primary's replication status alone, between its full reports (docs/DESIGN.md §38).
  router.handle('replicationReport', async ({ body, identity }) => control.replicationReport(body, identity), { bodyLimit: REPORT_BODY_LIMIT });

  router.handle('desired', async ({ params, query, reply }) => {
    if (query.after !== undefined) await control.views.wait(params.node_uuid, query.after, query.wait_ms, pollSignal(reply, shutdown));
    return sendJson(reply, control.views.get(params.node_uuid).body);
  });

  // Only ids an application of the node's view refers to: a node reads the files (and the
  // secrets) of what it runs or receives, nothing else (docs/DESIGN.md §22).
  router.handle('agentFile', async ({ params }) => {
    const kind = fileKindInView(control.views.applicationsOf(params.node_uuid), params.id);
    if (kind === null) throw new DroverError('DROVER_FILE_NOT_FOUND', `no application of node ${params.node_uuid} refers to content ${params.id.slice(0, 12)}…`);
    const bytes = await control.vault.get(kind, params.id);
    return { id: params.id, kind, content_base64: bytes.toString('base64') };
  });

  router.handle('routes', async ({ query, reply }) => {
    if (query.after !== undefined) await control.routes.wait(query.after, query.wait_ms, pollSignal(reply, shutdown), query.node_uuid);
    return sendJson(reply, control.routes.get().body);
  });

  router.handle('ackRoutes', async ({ body }) => {
    control.routes.ack(body.node_uuid, body.version);
    return {};
  });

  router.handle('routeAcks', async ({ query }) => control.routes.acks(query.version));

  router.handle('updateMigration', async ({ params, body }) => {
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
  });
}

/** Whether (and as what) an application among `apps` refers to content `id`. */
function fileKindInView(apps: readonly Application[], id: string): 'file' | 'secret' | null {
  for (const app of apps) {
    if (Object.values(app.secret_environment ?? {}).includes(id)) return 'secret';
    for (const f of app.files ?? []) {
      if (f.blob === id) return f.kind === 'secret' ? 'secret' : 'file';
      if (f.tree !== undefined && Object.values(f.tree).includes(id)) return 'file';
    }
  }
  return null;
}

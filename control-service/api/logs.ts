/**
 * `GET /v1/drover/applications/<name>/logs` (docs/DESIGN.md §27): the application's output
 * from the agent of the node it runs on now (cluster/logs-node.ts), passed through as the
 * agent gives it — newline-delimited JSON, one `{stream, text}` per line — for as long as a
 * follow lasts. The control service reaches the agent with its own certificate
 * (http/agent-logs.ts); users never talk to agents.
 */
import { DroverError } from '#common/errors.ts';
import { logsSourceOf } from '../cluster/logs-node.ts';
import type { Control } from '../control.ts';
import { indexOf } from '../desired/desired-index.ts';
import type { AgentLogs } from '../http/agent-logs.ts';
import type { Router } from '../http/router.ts';

export function logRoutes(router: Router, control: Control, agentLogs: AgentLogs | undefined, shutdown: AbortSignal): void {
  router.handle('applicationLogs', async ({ params, query, reply }) => {
    const applications = indexOf(control.desired).applications;
    const nodes = [...control.observed.all()].map((r) => ({ uuid: r.report.uuid, containers: r.containers }));
    const source = logsSourceOf(params.name, (name) => applications.get(name), nodes);
    if (source === undefined) throw new DroverError('DROVER_CONTAINER_NOT_FOUND', `No application "${params.name}" (drover status lists them).`, { detail: { name: params.name } });
    // The container's application part: the application's, or one instance's (`web.2`).
    const { container, uuid } = source;
    if (uuid === null) {
      throw new DroverError('DROVER_APPLICATION_NOT_RUNNING', `No node reports a container of "${container}" now: it has no output to show (drover status says where it stands).`, { detail: { application: container } });
    }
    const report = control.observed.get(uuid)!.report;
    const where = report.labels.name ?? report.host;
    if (agentLogs === undefined) {
      throw new DroverError('DROVER_LOGS_UNAVAILABLE', 'This control service serves plain HTTP: it has no certificate to reach the agents with, so it cannot show logs.', { detail: { application: container } });
    }
    if (report.logs === undefined) {
      throw new DroverError('DROVER_LOGS_UNAVAILABLE', `The agent of ${where} (${report.host}), where "${container}" runs, serves no logs: it has no control_tls, or its logs_port was taken (its log says which).`, {
        detail: { application: container, node: uuid },
      });
    }
    const gone = new AbortController();
    const upstream = await agentLogs({
      host: report.host,
      port: report.logs.port,
      app: container,
      ...(query.tail === undefined ? {} : { tail: query.tail }),
      follow: query.follow === 'true',
      signal: AbortSignal.any([gone.signal, shutdown]),
    });
    if (upstream.statusCode !== 200) {
      const text = await readAll(upstream);
      let description = text.slice(0, 500);
      let code = '';
      try {
        ({ description, code } = JSON.parse(text) as { description: string; code: string });
      } catch {
        // not JSON: its text, as it is
      }
      const notThere = upstream.statusCode === 404 && code === 'DROVER_APPLICATION_NOT_RUNNING';
      throw new DroverError(notThere ? 'DROVER_APPLICATION_NOT_RUNNING' : 'DROVER_LOGS_UNAVAILABLE', `The agent of ${where} (${report.host}) answered ${upstream.statusCode}: ${description}`, {
        detail: { application: container, node: uuid },
      });
    }
    const raw = reply.raw;
    reply.hijack();
    raw.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', 'x-drover-node': uuid });
    raw.once('close', () => {
      gone.abort();
      upstream.destroy();
    });
    upstream.on('error', () => raw.destroy());
    upstream.pipe(raw);
  });
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

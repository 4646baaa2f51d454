import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseDeployment, planDeploy } from '../../control-service/deploy/index.ts';
import { isDroverError } from '#common/errors.ts';
import { Dataset, Desired, type Migration, type Node } from '#common/model.ts';

/**
 * A small real HTTP server standing in for the control service in the CLI's unit tests
 * (cli/ may not import control-service/; test/cli/ runs the CLI against the real one). It
 * speaks the same paths and shapes (common/api.ts), keeps a desired configuration in memory,
 * deploys with the real `parseDeployment`/`planDeploy`, and walks each migration through a
 * script, one step per poll, so progress output can be checked without agents.
 */
export interface StandIn {
  url: string;
  desired: Desired;
  migrations: Map<string, Migration>;
  /** Phases a new migration walks through, one per GET. */
  script: Partial<Migration>[];
  requests: string[];
  close(): Promise<void>;
}

export const NODES: Node[] = [
  { uuid: '11111111-1111-4111-8111-111111111111', host: '127.0.0.11', labels: { name: 'n1' }, transfer: {} },
  { uuid: '22222222-2222-4222-8222-222222222222', host: '127.0.0.12', labels: { name: 'n2' }, transfer: {} },
];

export const SUCCESS: Partial<Migration>[] = [
  { phase: 'pre-copy', round: 1, bytes_sent: 0, bytes_total: 100 * 1024 ** 2 },
  { phase: 'pre-copy', round: 1, bytes_sent: 60 * 1024 ** 2, bytes_total: 100 * 1024 ** 2, rate_bytes_per_second: 30 * 1024 ** 2 },
  { phase: 'pre-copy', round: 2, bytes_sent: 100 * 1024 ** 2, bytes_total: 100 * 1024 ** 2, rate_bytes_per_second: 30 * 1024 ** 2 },
  { phase: 'cutover', round: 3, bytes_sent: 101 * 1024 ** 2, bytes_total: 101 * 1024 ** 2 },
  { phase: 'handoff', round: 3 },
  { phase: 'done', round: 3, cutover_ms: 180 },
];

export async function startStandIn(): Promise<StandIn> {
  const state: Omit<StandIn, 'url' | 'close'> = {
    desired: Desired.parse({ nodes: NODES }),
    migrations: new Map(),
    script: SUCCESS,
    requests: [],
  };
  const server: Server = createServer((req, res) => {
    void handle(state, req, res).catch((err: unknown) => send(res, 500, { description: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const standIn = state as StandIn;
  standIn.url = `http://127.0.0.1:${port}`;
  standIn.close = () => new Promise((resolve) => server.close(() => resolve()));
  return standIn;
}

/** How far each migration has walked through the script. */
const steps = new Map<string, number>();

async function handle(s: Omit<StandIn, 'url' | 'close'>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body: unknown = chunks.length === 0 ? null : JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  s.requests.push(`${req.method} ${path}`);
  const route = `${req.method} ${path}`;

  if (route === 'POST /v1/drover/deploy') {
    const b = body as { project: string; compose: { file: string; text: string }; topology: { file: string; text: string }; dry_run: boolean };
    try {
      const parsed = parseDeployment({ project: b.project, compose: b.compose, topology: b.topology, nodes: s.desired.nodes });
      const planned = planDeploy(s.desired, parsed, b.project);
      if (!b.dry_run) s.desired = planned.desired;
      return send(res, 200, { project: b.project, dry_run: b.dry_run, diff: planned.diff, migrations: [], unschedulable: {}, tag: 'stand-in' });
    } catch (err) {
      if (isDroverError(err)) return send(res, err.code === 'DROVER_BAD_CONFIG' ? 400 : 409, { description: err.message, code: err.code, detail: err.detail });
      throw err;
    }
  }
  if (route === 'GET /v1/state/nodes') {
    return send(res, 200, s.desired.nodes.map((n) => ({ uuid: n.uuid, host: n.host, state: 'known', era: 'e', labels: n.labels, last_seen: 0 })));
  }
  if (route === 'GET /v1/drover/applications') {
    return send(
      res,
      200,
      s.desired.applications.map((a) => ({
        name: a.name,
        project: a.project ?? null,
        image: a.image,
        node_uuid: a.node_uuid ?? null,
        state: a.node_uuid ? 'running' : 'unplaced',
        health: a.node_uuid ? 'healthy' : null,
        unschedulable_reason: a.node_uuid ? null : 'no node has enough memory',
        migration: null,
      })),
    );
  }
  if (route === 'GET /v1/configuration/containers') return send(res, 200, s.desired.applications);
  if (route === 'GET /v1/state/containers') {
    return send(res, 200, s.desired.applications.filter((a) => a.node_uuid).map((a) => ({ name: a.name, node_uuid: a.node_uuid, running: true, health: 'healthy' })));
  }
  if (route === 'GET /v1/configuration/datasets') return send(res, 200, s.desired.datasets);
  if (route === 'GET /v1/state/datasets') {
    return send(res, 200, s.desired.datasets.map((d) => ({ dataset_id: d.dataset_id, primary: d.primary, path: `/drover/${d.dataset_id}` })));
  }
  if (route === 'POST /v1/configuration/datasets') {
    const parsed = Dataset.safeParse({ dataset_id: randomUUID(), ...(body as object) });
    if (!parsed.success) return send(res, 400, { description: 'The provided JSON doesn\'t match the required schema.', errors: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
    s.desired.datasets.push(parsed.data);
    return send(res, 201, parsed.data);
  }
  const one = /^\/v1\/configuration\/datasets\/([^/]+)$/.exec(path);
  if (one) {
    const d = s.desired.datasets.find((x) => x.dataset_id === one[1]);
    if (d === undefined) return send(res, 404, { description: 'Dataset not found.' });
    if (req.method === 'DELETE') {
      d.deleted = true;
      return send(res, 200, d);
    }
    d.primary = (body as { primary: string }).primary;
    return send(res, 200, { ...d, migration: null });
  }
  const move = /^\/v1\/drover\/applications\/([^/]+)\/move$/.exec(path);
  if (move && req.method === 'POST') {
    const b = { application: decodeURIComponent(move[1]!), to: (body as { node_uuid: string }).node_uuid };
    const app = s.desired.applications.find((a) => a.name === b.application);
    if (app === undefined) return send(res, 404, { description: `No application "${b.application}".`, code: 'DROVER_APPLICATION_NOT_FOUND' });
    if (app.node_uuid === b.to) return send(res, 200, { application: app, migration: null });
    const m: Migration = {
      id: randomUUID(),
      application: app.name,
      dataset_ids: app.volumes.map((v) => v.dataset_id),
      from: app.node_uuid ?? NODES[0]!.uuid,
      to: b.to,
      phase: 'pending',
      generation: 1,
      round: 0,
      bytes_sent: 0,
      bytes_total: null,
      rate_bytes_per_second: null,
      started_at: 0,
      updated_at: 0,
      cutover_started_at: null,
      cutover_ms: null,
      error: null,
    };
    s.migrations.set(m.id, m);
    steps.set(m.id, 0);
    return send(res, 202, { application: app, migration: m });
  }
  const mig = /^\/v1\/drover\/migrations\/([^/]+)$/.exec(path);
  if (mig && req.method === 'GET') {
    const m = s.migrations.get(mig[1]!);
    if (m === undefined) return send(res, 404, { description: 'Migration not found.', code: 'DROVER_MIGRATION_NOT_FOUND' });
    const at = steps.get(m.id) ?? 0;
    const step = s.script[at];
    if (step !== undefined) Object.assign(m, step);
    steps.set(m.id, at + 1);
    return send(res, 200, m);
  }
  send(res, 404, { description: `No endpoint ${route}.`, code: 'DROVER_NOT_FOUND' });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * A tiny stand-in for the control service's route endpoints (common/channel.ts), on a real
 * HTTP server, so the proxy's tests speak to it exactly as to the control service: long-poll
 * `GET /v1/drover/routes?after=&wait_ms=`, `POST /v1/drover/routes/ack`.
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { ROUTES } from '#common/api-routes.ts';
import { RouteAck, type Route, type RouteTable } from '#common/channel.ts';

export class RouteServer {
  table: RouteTable = { version: 0, routes: [] };
  readonly acks: RouteAck[] = [];
  polls = 0;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private waiters: (() => void)[] = [];
  private ackWaiters: (() => void)[] = [];
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts listening (again on the same port after `stop`). */
  async start(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req.method ?? '', req.url ?? '', req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: this.port }, resolve);
    });
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : this.port;
    this.server = server;
  }

  /** Stops answering: the port closes and open long-polls are cut, as when the control service dies. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Publishes a new table version and wakes waiting polls. Returns the version. */
  publish(routes: Route[]): number {
    this.table = { version: this.table.version + 1, routes };
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
    return this.table.version;
  }

  /** Resolves when `nodeUuid` has acknowledged `version` (or a later one). */
  async waitForAck(nodeUuid: string, version: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.acks.some((a) => a.node_uuid === nodeUuid && a.version >= version)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ack of version ${version} from ${nodeUuid} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.ackWaiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  private async handle(method: string, url: string, req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const u = new URL(url, 'http://x');
    if (method === 'GET' && u.pathname === ROUTES.routes.path) {
      this.polls++;
      const after = u.searchParams.get('after');
      const waitMs = Math.min(Number(u.searchParams.get('wait_ms') ?? 25_000), 60_000);
      if (after !== null && Number(after) === this.table.version) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs);
          this.waiters.push(() => (clearTimeout(timer), resolve()));
        });
      }
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.table));
      return;
    }
    if (method === 'POST' && u.pathname === ROUTES.ackRoutes.path) {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const parsed = RouteAck.safeParse(JSON.parse(Buffer.concat(chunks).toString() || 'null'));
      if (!parsed.success) return void res.writeHead(400).end();
      this.acks.push(parsed.data);
      const waiters = this.ackWaiters;
      this.ackWaiters = [];
      for (const wake of waiters) wake();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    res.writeHead(404).end();
  }
}

export function route(application: string, externalPort: number, target: { host: string; port: number } | null, hold = false, generation = 0): Route {
  return {
    application,
    external_port: externalPort,
    target: target ? { ...target, node_uuid: '00000000-0000-4000-8000-000000000002' } : null,
    hold,
    generation,
  };
}

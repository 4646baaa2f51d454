/**
 * A stand-in for the control service's agent channel (common/channel.ts), for tests of the
 * real agent process before the real control service can run: it validates every report
 * with the model's schema, keeps them, and answers long-polls with the desired
 * configuration the test publishes.
 *
 * XXX: replace with the real control service (control-service/main.ts) once it runs.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CHANNEL_PATHS, type AgentDesired } from '#common/channel.ts';
import { NodeReport } from '#common/model.ts';

export interface StubControl {
  url: string;
  reports: NodeReport[];
  invalidReports: string[];
  publish(desired: Omit<AgentDesired, 'version'>): number;
  /**
   * Waits (bounded) for a report that satisfies `predicate`, among those received from
   * `fromIndex` on (default: from the call on, so an old report never answers).
   */
  waitForReport(predicate: (r: NodeReport) => boolean, options?: { timeoutMs?: number; fromIndex?: number }): Promise<NodeReport>;
  close(): Promise<void>;
}

export async function startStubControl(nodeUuid: string): Promise<StubControl> {
  let desired: AgentDesired | null = null;
  let waiters: (() => void)[] = [];
  const reports: NodeReport[] = [];
  const invalidReports: string[] = [];

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stub');
    if (req.method === 'POST' && url.pathname === CHANNEL_PATHS.report) {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const parsed = NodeReport.safeParse(JSON.parse(body));
        if (!parsed.success) {
          invalidReports.push(parsed.error.message);
          res.writeHead(400).end(parsed.error.message);
          return;
        }
        reports.push(parsed.data);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ version: desired?.version ?? 0 }));
      });
      return;
    }
    if (req.method === 'GET' && url.pathname === CHANNEL_PATHS.desired(nodeUuid)) {
      const after = url.searchParams.get('after');
      const waitMs = Math.min(Number(url.searchParams.get('wait_ms') ?? 25_000), 30_000);
      const answer = (): void => {
        if (res.writableEnded) return;
        if (!desired) res.writeHead(503).end('nothing published yet');
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(desired));
      };
      if (desired && (after === null || Number(after) !== desired.version)) return answer();
      const timer = setTimeout(answer, waitMs);
      waiters.push(() => {
        clearTimeout(timer);
        answer();
      });
      req.on('close', () => clearTimeout(timer));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    reports,
    invalidReports,
    publish(next) {
      desired = { ...next, version: (desired?.version ?? 0) + 1 };
      for (const wake of waiters.splice(0)) wake();
      return desired.version;
    },
    async waitForReport(predicate, { timeoutMs = 60_000, fromIndex = reports.length } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = reports.slice(fromIndex).find(predicate);
        if (found) return found;
        if (Date.now() > deadline) {
          throw new Error(`no matching report within ${timeoutMs} ms; last: ${JSON.stringify(reports.at(-1))}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async close() {
      for (const wake of waiters.splice(0)) wake();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      waiters = [];
    },
  };
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caPaths, initCa, issue } from '#common/cluster-ca.ts';
import { silentLogger } from '#common/log.ts';
import { readTlsIdentity, type TlsIdentity } from '#common/tls-client.ts';
import { LogsServer } from '../../convergence-agent/logs/logs-server.ts';
import { agentLogsClient } from '../../control-service/http/agent-logs.ts';

/**
 * The path of `drover logs` between the control service and an agent (docs/DESIGN.md §27),
 * over real mutual TLS on 127.0.0.1 with certificates of a test CA: the agent's endpoint
 * answers the control service's certificate only, and passes the container's output on as
 * lines of JSON. The output here is a docker log stream written by the test (dockerd's own
 * is in test/cli/cli-cluster.e2e.test.ts).
 */
function frame(kind: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = kind;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

let dir: string;
let server: LogsServer;
let port: number;
const ids: Record<string, TlsIdentity> = {};
const asked: { app: string; tail?: number; follow: boolean }[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drover-logs-endpoint-'));
  const ca = join(dir, 'ca');
  await initCa(ca);
  for (const [role, name] of [['control', 'control'], ['node', 'n1'], ['user', 'alice']] as const) {
    const { paths } = await issue(ca, { role, name, ...(role === 'control' ? { ipAddresses: ['127.0.0.1'] } : {}) });
    ids[role] = readTlsIdentity({ ca: caPaths(ca).cert, cert: paths.certPath, key: paths.keyPath });
  }
  server = new LogsServer({
    identity: ids.node!,
    host: '127.0.0.1',
    port: 0,
    log: silentLogger(),
    source: async (app, options) => {
      asked.push({ app, follow: options.follow, ...(options.tail === undefined ? {} : { tail: options.tail }) });
      if (app !== 'redis') return null;
      return { multiplexed: true, stream: [frame(1, 'Ready to accept connections\npart'), frame(2, 'a warning\n'), frame(1, 'ial line\n')] };
    },
  });
  port = await server.listen();
});

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function body(answer: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of answer) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

describe("an agent's logs endpoint", () => {
  it("gives the control service the container's output as JSON lines, stdout and stderr apart, with the tail asked", async () => {
    const answer = await agentLogsClient(ids.control!)({ host: '127.0.0.1', port, app: 'redis', tail: 20, follow: false, signal: AbortSignal.timeout(10_000) });
    expect(answer.statusCode).toBe(200);
    expect(answer.headers['content-type']).toContain('application/x-ndjson');
    expect((await body(answer)).trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { stream: 'stdout', text: 'Ready to accept connections' },
      { stream: 'stderr', text: 'a warning' },
      { stream: 'stdout', text: 'partial line' },
    ]);
    expect(asked.at(-1)).toEqual({ app: 'redis', tail: 20, follow: false });
  });

  it('answers 404 DROVER_APPLICATION_NOT_RUNNING for an application with no container on the node', async () => {
    const answer = await agentLogsClient(ids.control!)({ host: '127.0.0.1', port, app: 'other', follow: false, signal: AbortSignal.timeout(10_000) });
    expect(answer.statusCode).toBe(404);
    expect(JSON.parse(await body(answer))).toMatchObject({ code: 'DROVER_APPLICATION_NOT_RUNNING' });
  });

  it("refuses a user's or a node's certificate with 403: only the control service reads logs there", async () => {
    for (const who of ['user', 'node'] as const) {
      const answer = await agentLogsClient(ids[who]!)({ host: '127.0.0.1', port, app: 'redis', follow: false, signal: AbortSignal.timeout(10_000) });
      expect(answer.statusCode).toBe(403);
      expect(JSON.parse(await body(answer))).toMatchObject({ code: 'DROVER_FORBIDDEN' });
    }
  });

  it("is not trusted by the control service when its certificate is not a node's", async () => {
    const impostor = new LogsServer({ identity: ids.control!, host: '127.0.0.1', port: 0, log: silentLogger(), source: async () => null });
    const other = await impostor.listen();
    try {
      await expect(agentLogsClient(ids.control!)({ host: '127.0.0.1', port: other, app: 'redis', follow: false, signal: AbortSignal.timeout(10_000) })).rejects.toMatchObject({ code: 'DROVER_LOGS_UNAVAILABLE' });
    } finally {
      await impostor.close();
    }
  });
});

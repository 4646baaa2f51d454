import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverError } from '#common/errors.ts';
import { execProbe, httpProbe, tcpProbe } from './probes.ts';

// Real sockets on 127.0.0.1, as the agent probes a published port.
const servers: (Server | HttpServer)[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen<S extends Server | HttpServer>(server: S): Promise<number> {
  servers.push(server);
  server.on('connection', (s: Socket) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe('http probe', () => {
  it('succeeds on 200 and on a redirect, fails on 404 and 500 (Kubernetes: 200 ≤ status < 400)', async () => {
    const port = await listen(
      createHttpServer((req, res) => {
        res.statusCode = Number(req.url?.slice(1));
        res.end('x');
      }),
    );
    expect(await httpProbe('127.0.0.1', port, '/200', 1000)).toEqual({ outcome: 'success', detail: null });
    expect((await httpProbe('127.0.0.1', port, '/302', 1000)).outcome).toBe('success');
    expect(await httpProbe('127.0.0.1', port, '/404', 1000)).toEqual({ outcome: 'failure', detail: 'HTTP 404' });
    expect(await httpProbe('127.0.0.1', port, '/500', 1000)).toEqual({ outcome: 'failure', detail: 'HTTP 500' });
  });

  it('fails when nothing listens', async () => {
    const result = await httpProbe('127.0.0.1', await closedPort(), '/', 1000);
    expect(result.outcome).toBe('failure');
    expect(result.detail).toMatch(/ECONNREFUSED/);
  });

  it('fails when the answer takes longer than the timeout', async () => {
    const port = await listen(createHttpServer(() => {}));
    const started = Date.now();
    expect(await httpProbe('127.0.0.1', port, '/', 200)).toEqual({ outcome: 'failure', detail: 'no answer within 200 ms' });
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('tcp probe', () => {
  it('succeeds when the port accepts, even if the peer closes at once', async () => {
    const port = await listen(createTcpServer((s) => s.destroy()));
    expect(await tcpProbe('127.0.0.1', port, 1000)).toEqual({ outcome: 'success', detail: null });
  });

  it('fails when nothing listens', async () => {
    expect((await tcpProbe('127.0.0.1', await closedPort(), 1000)).outcome).toBe('failure');
  });
});

describe('exec probe', () => {
  const runtime = (exec: () => Promise<{ exitCode: number }>) => ({ exec });
  it('succeeds on exit code 0 and fails on any other', async () => {
    expect(await execProbe(runtime(async () => ({ exitCode: 0 })), 'c', ['true'], 1000)).toEqual({ outcome: 'success', detail: null });
    expect(await execProbe(runtime(async () => ({ exitCode: 2 })), 'c', ['false'], 1000)).toEqual({ outcome: 'failure', detail: 'exit code 2' });
  });

  it('fails when the command overruns its timeout, and is unknown when docker cannot be asked', async () => {
    const timeout = runtime(() => Promise.reject(new DroverError('DROVER_EXEC_TIMEOUT', 'slow')));
    expect(await execProbe(timeout, 'c', ['sleep', '9'], 100)).toEqual({ outcome: 'failure', detail: 'did not finish within 100 ms' });
    const down = runtime(() => Promise.reject(new DroverError('DROVER_DOCKER_UNAVAILABLE', 'docker is not reachable')));
    expect(await execProbe(down, 'c', ['true'], 100)).toEqual({ outcome: 'unknown', detail: 'docker is not reachable' });
  });
});

import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverError } from '#common/errors.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';
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

/** A promise and, once it has resolved, its value (null before). */
function settledOf<T>(promise: Promise<T>): { promise: Promise<T>; result: T | null } {
  const out: { promise: Promise<T>; result: T | null } = { promise, result: null };
  void promise.then((value) => (out.result = value));
  return out;
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
    let asked = false;
    const port = await listen(createHttpServer(() => (asked = true)));
    const clock = new FakeClock();
    const probing = settledOf(httpProbe('127.0.0.1', port, '/', 200, clock));
    await expect.poll(() => asked).toBe(true);
    await clock.advance(199);
    expect(probing.result).toBeNull();
    await clock.advance(1);
    expect(await probing.promise).toEqual({ outcome: 'failure', detail: 'no answer within 200 ms' });
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

/** A Redis that answers each line it reads with `answer(line)` (null: no answer), and keeps what it read. */
async function lineServer(answer: (line: string) => string | null): Promise<{ port: number; received: () => string }> {
  let received = '';
  const port = await listen(
    createTcpServer((s) => {
      let buffered = '';
      s.on('data', (chunk) => {
        received += chunk.toString('latin1');
        buffered += chunk.toString('latin1');
        for (let i = buffered.indexOf('\r\n'); i >= 0; i = buffered.indexOf('\r\n')) {
          const reply = answer(buffered.slice(0, i));
          buffered = buffered.slice(i + 2);
          if (reply !== null) s.write(reply);
        }
      });
    }),
  );
  return { port, received: () => received };
}

const ping = { send: 'PING\r\n', expect: '+PONG' };

describe('tcp probe with send and expect', () => {
  it('succeeds once the answer contains the expected string, after sending', async () => {
    const redis = await lineServer((line) => (line === 'PING' ? '+PONG\r\n' : '-ERR unknown command\r\n'));
    expect(await tcpProbe('127.0.0.1', redis.port, 1000, ping)).toEqual({ outcome: 'success', detail: null });
    expect(redis.received()).toBe('PING\r\n');
  });

  it('finds the expected string split across reads', async () => {
    const port = await listen(
      createTcpServer((s) => {
        s.write('+PO');
        setTimeout(() => s.write('NG\r\n'), 30);
      }),
    );
    expect(await tcpProbe('127.0.0.1', port, 1000, { expect: '+PONG' })).toEqual({ outcome: 'success', detail: null });
  });

  it('fails at once on a loading Redis, whose first line is not the answer it expects, showing what it answered', async () => {
    const redis = await lineServer(() => '-LOADING Redis is loading the dataset in memory\r\n');
    // The clock never moves: the probe ends on the answer, not at its timeout.
    expect(await tcpProbe('127.0.0.1', redis.port, 2_000, ping, new FakeClock())).toEqual({
      outcome: 'failure',
      detail: 'first line of the answer has no "+PONG"; answered "-LOADING Redis is loading the dataset in memory"',
    });
  });

  it('fails when the peer closes before answering, as docker-proxy does when nothing listens behind it', async () => {
    const port = await listen(createTcpServer((s) => s.destroy()));
    expect(await tcpProbe('127.0.0.1', port, 1000, ping)).toEqual({ outcome: 'failure', detail: 'connection closed before "+PONG"' });
  });

  it('fails when the peer answers something else and closes', async () => {
    const port = await listen(createTcpServer((s) => s.end('-ERR max number of clients reached\r\n')));
    expect(await tcpProbe('127.0.0.1', port, 1000, ping)).toEqual({
      outcome: 'failure',
      detail: 'first line of the answer has no "+PONG"; answered "-ERR max number of clients reached"',
    });
  });

  it('fails at its timeout when the peer never answers', async () => {
    const redis = await lineServer(() => null);
    const clock = new FakeClock();
    const probing = settledOf(tcpProbe('127.0.0.1', redis.port, 200, ping, clock));
    await expect.poll(() => redis.received()).toBe('PING\r\n');
    await clock.advance(199);
    expect(probing.result).toBeNull();
    await clock.advance(1);
    expect(await probing.promise).toEqual({ outcome: 'failure', detail: 'no "+PONG" within 200 ms' });
    expect(redis.received()).toBe('PING\r\n');
  });

  it('without send, waits for a banner', async () => {
    const port = await listen(createTcpServer((s) => s.write('220 mail.example ESMTP ready\r\n')));
    expect(await tcpProbe('127.0.0.1', port, 1000, { expect: 'ESMTP' })).toEqual({ outcome: 'success', detail: null });
    expect(await tcpProbe('127.0.0.1', port, 200, { expect: 'IMAP' })).toEqual({
      outcome: 'failure',
      detail: 'first line of the answer has no "IMAP"; answered "220 mail.example ESMTP ready"',
    });
  });

  it('with send alone, succeeds once the string is written', async () => {
    const redis = await lineServer(() => null);
    expect(await tcpProbe('127.0.0.1', redis.port, 1000, { send: 'PING\r\n' })).toEqual({ outcome: 'success', detail: null });
    await expect.poll(() => redis.received()).toBe('PING\r\n');
  });

  it('shows at most 80 printable characters of the answer', async () => {
    const port = await listen(createTcpServer((s) => s.end(Buffer.concat([Buffer.from('-ERR \x00\x1b[31m'), Buffer.alloc(200, 'x'), Buffer.from([0xff])]))));
    const { detail } = await tcpProbe('127.0.0.1', port, 1000, ping);
    const shown = /answered "(.*)"$/.exec(detail ?? '')?.[1] ?? '';
    expect(shown).toMatch(/^-ERR \[31mx+…$/);
    expect(shown).toHaveLength(80);
  });

  it('closes its connection and leaves no timer behind, whatever the outcome', async () => {
    let open = 0;
    const port = await listen(
      createTcpServer((s) => {
        open++;
        s.on('close', () => open--);
        s.on('data', (d) => (d.toString() === 'PING\r\n' ? s.write('+PONG\r\n') : undefined));
      }),
    );
    const closing = await listen(createTcpServer((s) => s.end('-ERR\r\n')));
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    let before = timers();
    expect((await tcpProbe('127.0.0.1', port, 5_000, ping)).outcome).toBe('success');
    expect(timers()).toBe(before);
    await expect.poll(() => open).toBe(0);
    before = timers();
    expect((await tcpProbe('127.0.0.1', closing, 5_000, ping)).outcome).toBe('failure');
    expect(timers()).toBe(before);
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

import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisConnection, RedisConnectionError, RedisReplyError } from './redis-client.ts';
import { AckedWriter, loadData, writeValue } from './redis-load.ts';

/**
 * A Redis stand-in on 127.0.0.1 speaking enough RESP for ioredis as redis-client.ts sets it
 * up: PING, SET, GET, MGET, DBSIZE. `dropNextSet` closes the connection on the next SET,
 * after storing it or not. (A real redis-server is exercised by the demo and migration e2e
 * tests; here the failures must be placed exactly.)
 */
class FakeRedis {
  readonly data = new Map<string, string>();
  dropNextSet: 'after-store' | 'before-store' | null = null;
  sets = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor() {
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      let buf = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        for (;;) {
          const parsed = parseCommand(buf);
          if (parsed === null) return;
          buf = buf.subarray(parsed.end);
          const reply = this.handle(parsed.args, socket);
          if (reply === null) return;
          socket.write(reply);
        }
      });
      socket.on('error', () => undefined);
    });
  }

  async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(args: string[], socket: Socket): string | null {
    const [cmd, ...rest] = args;
    switch (cmd?.toUpperCase()) {
      case 'PING':
        return '+PONG\r\n';
      case 'SET': {
        this.sets++;
        const drop = this.dropNextSet;
        this.dropNextSet = null;
        if (drop !== 'before-store') this.data.set(rest[0]!, rest[1]!);
        if (drop !== null) {
          socket.end();
          return null;
        }
        return '+OK\r\n';
      }
      case 'GET':
        return bulk(this.data.get(rest[0]!));
      case 'MGET':
        return `*${rest.length}\r\n${rest.map((k) => bulk(this.data.get(k))).join('')}`;
      case 'DBSIZE':
        return `:${this.data.size}\r\n`;
      default:
        return `-ERR unknown command '${cmd}'\r\n`;
    }
  }
}

function bulk(value: string | undefined): string {
  return value === undefined ? '$-1\r\n' : `$${Buffer.byteLength(value)}\r\n${value}\r\n`;
}

/** One command (an array of bulk strings) from the front of `buf`, or null when it is not all there yet. */
function parseCommand(buf: Buffer): { args: string[]; end: number } | null {
  const line = (at: number): { text: string; end: number } | null => {
    const eol = buf.indexOf('\r\n', at);
    return eol < 0 ? null : { text: buf.toString('utf8', at, eol), end: eol + 2 };
  };
  const head = line(0);
  if (head === null) return null;
  if (!head.text.startsWith('*')) throw new Error(`not a RESP command: ${JSON.stringify(head.text)}`);
  const args: string[] = [];
  let at = head.end;
  for (let i = 0; i < Number(head.text.slice(1)); i++) {
    const size = line(at);
    if (size === null) return null;
    const length = Number(size.text.slice(1));
    if (buf.length < size.end + length + 2) return null;
    args.push(buf.toString('utf8', size.end, size.end + length));
    at = size.end + length + 2;
  }
  return { args, end: at };
}

let redis: FakeRedis | null = null;
afterEach(async () => {
  await redis?.close();
  redis = null;
});

async function fakeRedis(): Promise<FakeRedis> {
  redis = new FakeRedis();
  await redis.listen();
  return redis;
}

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("the fake Redis's command reader", () => {
  it('reads a command and waits for one split across chunks', () => {
    const whole = Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\na\r\n$5\r\nhello\r\n');
    expect(parseCommand(whole)).toEqual({ args: ['SET', 'a', 'hello'], end: whole.length });
    for (let cut = 1; cut < whole.length; cut++) expect(parseCommand(whole.subarray(0, cut))).toBeNull();
  });
});

describe('the Redis connection (ioredis)', () => {
  it('answers pipelined commands in order, an error reply as a RedisReplyError', async () => {
    const server = await fakeRedis();
    const client = await RedisConnection.connect({ host: '127.0.0.1', port: server.port });
    const replies = await Promise.all([
      client.run((r) => r.set('a', '1')),
      client.run((r) => r.get('a')),
      client.run((r) => r.call('NOPE')).catch((e: Error) => e),
    ]);
    client.close();
    expect(replies[0]).toBe('OK');
    expect(replies[1]).toBe('1');
    expect(replies[2]).toBeInstanceOf(RedisReplyError);
  });

  it('names a refused connection and a closed one, and never re-sends by itself', async () => {
    const server = await fakeRedis();
    const port = server.port;
    const client = await RedisConnection.connect({ host: '127.0.0.1', port });
    server.dropNextSet = 'before-store';
    const closed = await client.run((r) => r.set('a', '1')).catch((e: unknown) => e);
    expect(closed).toMatchObject({ kind: 'closed' });
    expect(client.closed).toBe(true);
    // No offline queue, no reconnect: a command on the closed connection fails at once.
    expect(await client.run((r) => r.set('b', '1')).catch((e: unknown) => e)).toMatchObject({ kind: 'closed' });
    expect(server.sets).toBe(1);
    await server.close();
    redis = null;
    const refused = await RedisConnection.connect({ host: '127.0.0.1', port }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RedisConnectionError);
    expect(refused).toMatchObject({ kind: 'refused' });
  });

  it('loads the asked number of bytes as random values', async () => {
    const server = await fakeRedis();
    const keys = await loadData({ host: '127.0.0.1', port: server.port }, { prefix: 'd:', bytes: 100 * 1024, valueBytes: 1024, pipeline: 8 });
    expect(keys).toBe(100);
    expect(server.data.size).toBe(100);
    expect(new Set(server.data.values()).size).toBe(100);
  });
});

describe('the acknowledged-write recorder', () => {
  it('reconnects on a closed connection and re-sends the write that was not acknowledged, without counting a failure', async () => {
    const server = await fakeRedis();
    const writer = new AckedWriter(() => ({ host: '127.0.0.1', port: server.port }), { prefix: 'w:', intervalMs: 1 });
    writer.start();
    await until(() => writer.acked >= 20);
    server.dropNextSet = 'before-store';
    await until(() => server.dropNextSet === null && writer.acked >= 40);
    server.dropNextSet = 'after-store';
    await until(() => server.dropNextSet === null && writer.acked >= 60);
    const report = await writer.stop();
    expect(report).toMatchObject({ failed: 0, reconnects: 2 });
    expect((await writer.verify({ host: '127.0.0.1', port: server.port })).lost).toEqual([]);
    expect(server.data.get('w:1')).toBe(writeValue(writer.run, 1));
  });

  it('counts refused connections as failed requests and measures the gap they make', async () => {
    const server = await fakeRedis();
    const port = server.port;
    const writer = new AckedWriter(() => ({ host: '127.0.0.1', port }), { prefix: 'w:', intervalMs: 1, retryMs: 10 });
    writer.start();
    await until(() => writer.acked >= 10);
    const data = server.data;
    await server.close();
    // Wait for the writer to meet the refusal (a fixed sleep raced a starved event loop).
    const closedAt = performance.now();
    await until(() => writer.failedCount >= 1);
    await new Promise((r) => setTimeout(r, Math.max(0, 300 - (performance.now() - closedAt))));
    const again = new FakeRedis();
    for (const [k, v] of data) again.data.set(k, v);
    await again.listen(port);
    redis = again;
    await until(() => writer.acked >= 30);
    const report = await writer.stop();
    expect(report.failed).toBeGreaterThanOrEqual(1);
    expect(report.failures.map((f) => f.kind)).toContain('refused');
    expect(report.pauseMs).toBeGreaterThanOrEqual(250);
  });

  it('reports acknowledged writes that are gone as lost', async () => {
    const server = await fakeRedis();
    const writer = new AckedWriter(() => ({ host: '127.0.0.1', port: server.port }), { prefix: 'w:', intervalMs: 1 });
    writer.start();
    await until(() => writer.acked >= 10);
    await writer.stop();
    server.data.delete('w:3');
    server.data.set('w:7', 'something else');
    expect((await writer.verify({ host: '127.0.0.1', port: server.port })).lost).toEqual(['w:3', 'w:7']);
  });
});

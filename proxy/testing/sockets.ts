/**
 * Test helpers for the proxy's socket tests: small real servers and clients on loopback,
 * descriptor counts, checksums. Tests only; the proxy itself reaches node:net through its
 * engine files.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { systemClock } from '#common/clock.ts';

export interface TestServer {
  port: number;
  host: string;
  sockets: Set<Socket>;
  accepted: number;
  /** Closes the port and every connection at once. */
  close(): Promise<void>;
  /** Closes the port and waits until the connections it had end by themselves (an app's graceful stop). */
  closeGracefully(timeoutMs?: number): Promise<void>;
}

/** A server on `host` (port 0) calling `onSocket` for each connection, allowHalfOpen. */
export async function startServer(host: string, onSocket: (s: Socket) => void, port = 0): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    result.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 2048 }, resolve);
  });
  const address = server.address();
  const result: TestServer = {
    port: typeof address === 'object' && address ? address.port : port,
    host,
    sockets,
    accepted: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
    closeGracefully: async (timeoutMs = 5000) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await waitFor(() => sockets.size === 0, timeoutMs, 'connections to end');
      await closed;
    },
  };
  return result;
}

/** Echoes what it reads; ends its side when the client ends (half-close aware). */
export function echo(s: Socket): void {
  s.pipe(s);
}

/** Replies `<tag>:<sha256 of everything read>` once the client half-closes. */
export function digestReply(tag: string): (s: Socket) => void {
  return (s) => {
    const hash = createHash('sha256');
    s.on('data', (d: Buffer) => hash.update(d));
    s.on('end', () => s.end(`${tag}:${hash.digest('hex')}`));
  };
}

export function connectTo(port: number, host: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, allowHalfOpen: true });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Everything the socket sends until it ends; rejects on error. */
export function readAll(s: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Open descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** What each open descriptor of this process is (`socket:[123]`, `pipe:[456]`, a path), as `fd → target`. */
export function fdTargets(): string[] {
  return readdirSync('/proc/self/fd').map((fd) => {
    try {
      return `${fd} → ${readlinkSync(`/proc/self/fd/${fd}`)}`;
    } catch {
      return `${fd} → ?`;
    }
  });
}

/** Deterministic pseudo-random bytes (seeded), so a failure reproduces. */
export function patternBytes(length: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

/** Polls `check` every 10 ms until it is true or `timeoutMs` passes. */
export async function waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await systemClock.sleep(10);
  }
}

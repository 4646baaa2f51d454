import { request } from 'node:http';
import { connect } from 'node:net';
import { open } from 'node:fs/promises';
import { DroverError } from '#common/errors.ts';
import { systemClock } from '#common/clock.ts';
import { isAlive } from './processes.ts';

/** Bounded waits for a freshly started daemon to answer. */

function once<T>(attempt: () => Promise<T>): Promise<T | null> {
  return attempt().catch(() => null);
}

/** GET /_ping on a dockerd unix socket answers 'OK'. */
export function pingDocker(socketPath: string, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(res.statusCode === 200 && body.trim() === 'OK'));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** A TCP connect to host:port succeeds. */
export function canConnect(host: string, port: number, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The last `bytes` of a log file, for error messages. */
export async function tail(path: string, bytes = 2_000): Promise<string> {
  const text = await once(async () => {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      const start = Math.max(0, size - bytes);
      const buffer = Buffer.alloc(size - start);
      await handle.read(buffer, 0, buffer.length, start);
      return buffer.toString('utf8');
    } finally {
      await handle.close();
    }
  });
  return text ?? '';
}

/**
 * Polls `check` until it passes, the daemon `pid` dies, or `timeoutMs` passes; throws
 * DROVER_CLUSTER_DAEMON_FAILED with the tail of `logFile` otherwise.
 */
export async function waitReady(what: string, pid: number, check: () => Promise<boolean>, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    if (pid > 0 && !isAlive(pid)) break;
    await systemClock.sleep(100);
  }
  if (await check()) return;
  throw new DroverError('DROVER_CLUSTER_DAEMON_FAILED', `${what} did not become ready (pid ${pid}); log ${logFile}:\n${await tail(logFile)}`, {
    detail: { what, pid, logFile },
  });
}

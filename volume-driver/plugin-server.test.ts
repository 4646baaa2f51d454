import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { silentLogger } from '#common/log.ts';
import { socketAnswers, socketPathFor, startPluginServer } from './plugin-server.ts';

let dir: string;
const cleanups: Array<() => Promise<void>> = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drover-sock-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

function listenRaw(path: string): Promise<Server> {
  const server = createServer((s) => s.end());
  cleanups.push(() => new Promise((r) => server.close(() => r())));
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

describe('plugin socket lifecycle', () => {
  it('puts the socket where Docker looks for a plugin of that name', () => {
    expect(socketPathFor('drover-n1')).toBe('/run/docker/plugins/drover-n1.sock');
    expect(() => socketPathFor('Drover/../x')).toThrow(/must be short and lower-case/);
  });

  it('removes its socket when it stops', async () => {
    const path = join(dir, 'p.sock');
    const server = await startPluginServer(Fastify(), path, silentLogger());
    expect(await socketAnswers(path)).toBe(true);
    await server.close();
    expect(existsSync(path)).toBe(false);
  });

  it('replaces a stale socket that nothing answers on, as a killed plugin leaves behind', async () => {
    const path = join(dir, 'p.sock');
    // A socket file that was bound but has no listener: what SIGKILL leaves (Node unlinks on close).
    execFileSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(path)})`]);
    expect(existsSync(path)).toBe(true);
    expect(await socketAnswers(path)).toBe(false);
    const server = await startPluginServer(Fastify(), path, silentLogger());
    cleanups.push(() => server.close());
    expect(await socketAnswers(path)).toBe(true);
  });

  it('refuses to start when another plugin answers on the socket, and leaves that one alone', async () => {
    const path = join(dir, 'p.sock');
    await listenRaw(path);
    const error = await startPluginServer(Fastify(), path, silentLogger()).catch((e: unknown) => e);
    expect(isDroverError(error, 'DROVER_PLUGIN_SOCKET_TAKEN')).toBe(true);
    expect((error as Error).message).toBe(`another plugin already answers on ${path}; stop it or choose another --name`);
    expect(await socketAnswers(path)).toBe(true);
  });

  it('refuses a path that is not a socket', async () => {
    const path = join(dir, 'p.sock');
    await writeFile(path, 'not a socket');
    const error = await startPluginServer(Fastify(), path, silentLogger()).catch((e: unknown) => e);
    expect((error as Error).message).toBe(`${path} exists and is not a socket; remove it or choose another --name`);
  });
});

/**
 * Puts the plugin's app on its unix socket, `/run/docker/plugins/<name>.sock`, and takes the
 * socket away again. A socket file with nothing behind it stalls dockerd ~15 s on every
 * volume call (reference §1.8), so:
 * - a stale socket (nothing answers) is removed before listening;
 * - a live one (another plugin answers) makes start-up fail instead of stealing its name;
 * - `close` always removes our socket, and `removeSocketSync` does it from an exit handler.
 */
import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';

export const DOCKER_PLUGIN_DIR = '/run/docker/plugins';

export function socketPathFor(name: string, dir = DOCKER_PLUGIN_DIR): string {
  if (!/^[a-z0-9][a-z0-9_.-]{0,63}$/.test(name)) {
    throw new DroverError('DROVER_PLUGIN_BAD_NAME', `plugin name "${name}" must be short and lower-case (letters, digits, "_", "." or "-")`);
  }
  return join(dir, `${name}.sock`);
}

export interface PluginServer {
  readonly socketPath: string;
  /** Stops answering (waiting at most `graceMs` for calls in flight) and removes the socket. */
  close(graceMs?: number): Promise<void>;
  /** Removes our socket file now, synchronously; for `process.on('exit')`. */
  removeSocketSync(): void;
}

/** Resolves true when something accepts a connection on `path` within `timeoutMs`. */
export function socketAnswers(path: string, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const timer = setTimeout(() => finish(true), timeoutMs); // accepted-but-silent still counts as live
    function finish(live: boolean): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(live);
    }
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

export async function startPluginServer(app: FastifyInstance, socketPath: string, log: Logger): Promise<PluginServer> {
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
  const existing = await lstat(socketPath).catch(() => null);
  if (existing) {
    if (!existing.isSocket()) {
      throw new DroverError('DROVER_PLUGIN_SOCKET_TAKEN', `${socketPath} exists and is not a socket; remove it or choose another --name`);
    }
    if (await socketAnswers(socketPath)) {
      throw new DroverError('DROVER_PLUGIN_SOCKET_TAKEN', `another plugin already answers on ${socketPath}; stop it or choose another --name`);
    }
    await unlink(socketPath).catch((err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
    log.warn({ socketPath }, 'stale socket removed');
  }

  await app.listen({ path: socketPath });
  const ino = lstatSync(socketPath).ino;
  let closed = false;

  function removeSocketSync(): void {
    try {
      // Only our own socket: never one a later instance created under the same name.
      if (lstatSync(socketPath).ino === ino) unlinkSync(socketPath);
    } catch {
      // already gone
    }
  }

  return {
    socketPath,
    removeSocketSync,
    async close(graceMs = 5_000) {
      if (closed) return;
      closed = true;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          log.warn({ graceMs }, 'calls still in flight at stop; closing their connections');
          app.server.closeAllConnections();
          resolve();
        }, graceMs);
      });
      // Closing the listener unlinks the file at once (libuv), so Docker gets "no such
      // socket" right away rather than a connection that hangs; in-flight calls finish.
      await Promise.race([app.close(), late]);
      clearTimeout(timer);
      removeSocketSync();
    },
  };
}

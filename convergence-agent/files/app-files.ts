/**
 * Files that travel with an application (docs/DESIGN.md §22), on the node that runs it: before
 * the container is created the agent fetches each file's content from the control service (by
 * its content id) and writes it under its files directory — a secret only under its tmpfs, so a
 * secret never reaches the node's disk — then Docker binds each one read-only. Secret
 * environment values are fetched the same way and handed to Docker's create call only.
 *
 * Paths are `<root>/<app>/<digest>`: the digest covers the content and how it is mounted, so a
 * path once written never changes and a rewrite is skipped. `release` removes an application's
 * files when its container is removed (moved away, changed, or removed from the configuration).
 */
import { chmod, chown, mkdir, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { ContainerSpec, MountedFile } from '../plan/types.ts';

/** Linux's f_type of a tmpfs (statfs(2)). */
export const TMPFS_MAGIC = 0x01021994;

/** Where contents come from: the control service's agent route, by id. */
export interface FileSource {
  fetch(id: string): Promise<{ kind: 'file' | 'secret'; bytes: Buffer }>;
}

export interface AppFilesOptions {
  filesRoot: string;
  secretsRoot: string;
  source: FileSource;
  log: Logger;
  /**
   * Mounts the tmpfs at `secretsRoot` (files/secrets-tmpfs.ts), called the first time a secret
   * is written here: a node that runs no application with secrets mounts none.
   */
  mountSecrets?: () => Promise<unknown>;
}

export class AppFiles {
  private mounting: Promise<unknown> | null = null;

  constructor(private readonly options: AppFilesOptions) {}

  /**
   * Writes the spec's files that are not there yet, and answers the secret environment as
   * `NAME=value` lines for Docker's create call.
   * @throws DroverError `DROVER_SECRET_UNREADABLE` when the secrets directory is not a tmpfs
   *   (a secret is never written to disk); the control service's errors when a content is missing.
   */
  async prepare(spec: ContainerSpec): Promise<string[]> {
    for (const file of spec.files ?? []) await this.write(file);
    const env: string[] = [];
    for (const [name, id] of Object.entries(spec.secretEnv ?? {})) {
      const { bytes } = await this.options.source.fetch(id);
      const value = bytes.toString('utf8');
      if (value.includes('\0')) throw new DroverError('DROVER_SECRET_UNREADABLE', `secret environment value ${name} holds a NUL byte`);
      env.push(`${name}=${value}`);
    }
    return env;
  }

  /** Removes what was written for `app` (files and secrets). */
  async release(app: string): Promise<void> {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(app)) return;
    await rm(join(this.options.filesRoot, app), { recursive: true, force: true });
    await rm(join(this.options.secretsRoot, app), { recursive: true, force: true });
  }

  private async write(file: MountedFile): Promise<void> {
    if (await exists(file.source)) return;
    if (file.secret) await this.requireTmpfs();
    const dir = dirname(file.source);
    await mkdir(dir, { recursive: true, mode: file.secret ? 0o700 : 0o755 });
    const temp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
    try {
      if (file.blob !== undefined) await this.writeOne(temp, file.blob, file);
      else {
        await mkdir(temp, { mode: 0o755 });
        for (const [rel, id] of Object.entries(file.tree ?? {})) {
          const path = join(temp, rel);
          if (!path.startsWith(`${temp}/`)) throw new DroverError('DROVER_INVALID_REQUEST', `"${rel}" is not inside its directory`);
          await mkdir(dirname(path), { recursive: true, mode: 0o755 });
          await this.writeOne(path, id, file);
        }
        if (file.uid !== undefined || file.gid !== undefined) await chown(temp, file.uid ?? 0, file.gid ?? 0);
      }
      await rename(temp, file.source);
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      throw err;
    }
    this.options.log.info({ target: file.target, secret: file.secret }, 'application file written');
  }

  private async writeOne(path: string, id: string, file: MountedFile): Promise<void> {
    const { bytes } = await this.options.source.fetch(id);
    await writeFile(path, bytes, { mode: 0o600, flag: 'wx' });
    if (file.uid !== undefined || file.gid !== undefined) await chown(path, file.uid ?? 0, file.gid ?? 0);
    await chmod(path, file.mode);
  }

  private async requireTmpfs(): Promise<void> {
    let fs = await statfs(this.options.secretsRoot).catch(() => null);
    if ((fs === null || fs.type !== TMPFS_MAGIC) && this.options.mountSecrets !== undefined) {
      // One mount at a time; a failed one is tried again by the next secret.
      this.mounting ??= this.options.mountSecrets().finally(() => (this.mounting = null));
      await this.mounting.catch((err: unknown) => this.options.log.warn({ err, dir: this.options.secretsRoot }, 'secrets tmpfs not mounted'));
      fs = await statfs(this.options.secretsRoot).catch(() => null);
    }
    if (fs === null || fs.type !== TMPFS_MAGIC) {
      throw new DroverError('DROVER_SECRET_UNREADABLE', `${this.options.secretsRoot} is not a tmpfs; the agent writes secrets only to memory (it mounts one there for the first secret when it runs as root)`);
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

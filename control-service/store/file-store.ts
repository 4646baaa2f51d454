/**
 * The embedded store: the desired configuration in one versioned JSON file
 * (`<data-dir>/desired.json`, format.ts), replaced atomically on every commit:
 * write a temp file in the same directory, fsync it, rename it over the old file, fsync the
 * directory. A crash at any instant leaves either the old or the new file, never a torn one;
 * an update is acknowledged only after both fsyncs. A leftover temp file (a crash before the
 * rename) was never acknowledged and is deleted on load.
 */
import { open, readdir, readFile, rename, rm, mkdir, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { Desired } from '#common/model.ts';
import { CommittingStore } from './committing-store.ts';
import { decodeStoreFile, FORMAT_VERSION, storeFileChunks } from './format.ts';
import { validateDesired } from './validate.ts';
import { acquireDirLock, type DirLock } from './dir-lock.ts';

export const STORE_FILE = 'desired.json';
const TEMP_MARK = '.tmp-';

export interface FileStoreOptions {
  dir: string;
  log: Logger;
}

export class FileConfigStore extends CommittingStore {
  private readonly file: string;
  private lock: DirLock | null = null;
  private tempSeq = 0;

  constructor(private readonly options: FileStoreOptions) {
    super(options.log.child({ subsystem: 'store' }));
    this.file = join(options.dir, STORE_FILE);
  }

  protected async read(): Promise<{ version: number; desired: unknown }> {
    await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
    this.lock = await acquireDirLock(this.options.dir);
    try {
      return await this.readLocked();
    } catch (err) {
      await this.release();
      throw err;
    }
  }

  private async readLocked(): Promise<{ version: number; desired: unknown }> {
    await this.removeTempFiles();
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 0, desired: undefined };
      throw new DroverError('DROVER_STORE_READ_FAILED', `could not read ${this.file}`, { cause: err, detail: { file: this.file } });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      // Renames are atomic, so this is damage from outside drover: refuse rather than start empty.
      throw new DroverError('DROVER_STORE_CORRUPT', `${this.file} is not valid JSON; restore it from a backup`, {
        cause: err,
        detail: { file: this.file },
      });
    }
    const decoded = decodeStoreFile(raw, this.file);
    const desired = validateDesired(decoded.desired);
    if (decoded.readFormat !== FORMAT_VERSION) {
      const backup = `${this.file}.format-${decoded.readFormat}.bak`;
      await copyFile(this.file, backup);
      await this.persist(decoded.version, desired);
      this.log.info({ from: decoded.readFormat, to: FORMAT_VERSION, backup }, 'store file upgraded');
    }
    return { version: decoded.version, desired };
  }

  protected async persist(version: number, desired: Desired): Promise<void> {
    const temp = `${this.file}${TEMP_MARK}${process.pid}-${++this.tempSeq}`;
    try {
      const handle = await open(temp, 'w', 0o600);
      try {
        for (const chunk of storeFileChunks(version, desired)) {
          for (let at = 0; at < chunk.length; ) at += (await handle.write(chunk, at, chunk.length - at)).bytesWritten;
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.file);
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
    const dir = await open(this.options.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  protected override async release(): Promise<void> {
    await this.lock?.release();
    this.lock = null;
  }

  private async removeTempFiles(): Promise<void> {
    for (const name of await readdir(this.options.dir)) {
      if (!name.startsWith(STORE_FILE + TEMP_MARK)) continue;
      await rm(join(this.options.dir, name), { force: true });
      this.log.warn({ file: name }, 'unacknowledged temp file removed');
    }
  }
}

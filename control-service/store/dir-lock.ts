/**
 * One control service per data directory: a lock file holding the owner's pid, created
 * with O_EXCL. A lock whose pid is no longer alive (the owner was killed) is taken over.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DroverError } from '#common/errors.ts';

export interface DirLock {
  release(): Promise<void>;
}

const LOCK_FILE = 'control.lock';
/** Directories this process holds (the pid check cannot tell two stores of one process apart). */
const held = new Set<string>();

export async function acquireDirLock(dir: string): Promise<DirLock> {
  const path = join(dir, LOCK_FILE);
  if (held.has(path)) {
    throw new DroverError('DROVER_STORE_LOCKED', `${dir} is in use by another store of this process`, { detail: { dir, pid: process.pid } });
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      held.add(path);
      return {
        release: async () => {
          held.delete(path);
          await rm(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new DroverError('DROVER_STORE_LOCKED', `${dir} is in use by another control service (pid ${owner})`, {
        detail: { dir, pid: owner },
      });
    }
    await rm(path, { force: true });
  }
  throw new DroverError('DROVER_STORE_LOCKED', `could not lock ${dir}`, { detail: { dir } });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

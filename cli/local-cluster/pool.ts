import { mkdir, rm, truncate, writeFile } from 'node:fs/promises';
import { isDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import { sleep } from '#common/sleep.ts';
import { run } from './run.ts';

/** A node's zfs-fuse pool on a sparse file, with drover's parent dataset `<pool>/drover`. */

export async function listPools(): Promise<string[]> {
  const { stdout } = await run('zpool', ['list', '-H', '-o', 'name'], { timeoutMs: 30_000 });
  return stdout.split('\n').map((line) => line.trim()).filter((line) => line.length > 0);
}

export async function createPool(pool: string, file: string, mountpoint: string, sizeMiB: number): Promise<void> {
  await mkdir(mountpoint, { recursive: true });
  await writeFile(file, '');
  await truncate(file, sizeMiB * 1024 * 1024);
  await run('zpool', ['create', '-m', mountpoint, pool, file], { timeoutMs: 60_000 });
  await run('zfs', ['create', `${pool}/drover`], { timeoutMs: 60_000 });
}

/**
 * Destroys a pool, retrying while zfs-fuse says it is busy (it does so transiently right
 * after mounts and receives); falls back to a forced export when destroy keeps failing,
 * e.g. for a pool whose file is already gone.
 */
export async function destroyPool(pool: string, log: Logger): Promise<void> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      await run('zpool', ['destroy', '-f', pool], { timeoutMs: 60_000 });
      return;
    } catch (err) {
      lastError = err;
      if (!(await listPools()).includes(pool)) return;
      log.debug({ pool, attempt, err }, 'pool destroy retried');
      await sleep(Math.min(250 * 2 ** attempt, 4_000));
    }
  }
  try {
    await run('zpool', ['export', '-f', pool], { timeoutMs: 60_000 });
    return;
  } catch (err) {
    if (isDroverError(err) && !(await listPools()).includes(pool)) return;
  }
  throw lastError;
}

export async function removePoolFile(file: string): Promise<void> {
  await rm(file, { force: true });
}

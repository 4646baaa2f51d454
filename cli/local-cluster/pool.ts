import { mkdir, rm, truncate, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import { sleep } from '#common/sleep.ts';
import { run } from './run.ts';

/**
 * A node's zfs-fuse pool on a sparse file, with drover's parent dataset `<pool>/drover`.
 *
 * Pool-level commands of every local cluster on the machine take turns (flock on one lock
 * file): zfs-fuse serialises them internally anyway, and a deadlocked zfs-fuse daemon was
 * seen while several clusters created and destroyed pools at once. Defensive, not proven.
 */
const POOL_LOCK = '/run/drover/zpool.lock';
const LOCK_WAIT_S = 120;

async function zpoolTakingTurns(args: string[], timeoutMs: number): Promise<void> {
  await mkdir(dirname(POOL_LOCK), { recursive: true });
  await run('flock', ['-w', String(LOCK_WAIT_S), POOL_LOCK, 'zpool', ...args], { timeoutMs: timeoutMs + LOCK_WAIT_S * 1000 });
}

export async function listPools(): Promise<string[]> {
  const { stdout } = await run('zpool', ['list', '-H', '-o', 'name'], { timeoutMs: 30_000 });
  return stdout.split('\n').map((line) => line.trim()).filter((line) => line.length > 0);
}

export async function createPool(pool: string, file: string, mountpoint: string, sizeMiB: number): Promise<void> {
  await mkdir(mountpoint, { recursive: true });
  await writeFile(file, '');
  await truncate(file, sizeMiB * 1024 * 1024);
  await zpoolTakingTurns(['create', '-m', mountpoint, pool, file], 60_000);
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
      await zpoolTakingTurns(['destroy', '-f', pool], 60_000);
      return;
    } catch (err) {
      lastError = err;
      if (!(await listPools()).includes(pool)) return;
      log.debug({ pool, attempt, err }, 'pool destroy retried');
      await sleep(Math.min(250 * 2 ** attempt, 4_000));
    }
  }
  try {
    await zpoolTakingTurns(['export', '-f', pool], 60_000);
    return;
  } catch (err) {
    if (isDroverError(err) && !(await listPools()).includes(pool)) return;
  }
  throw lastError;
}

export async function removePoolFile(file: string): Promise<void> {
  await rm(file, { force: true });
}

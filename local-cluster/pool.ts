import { mkdir, rm, truncate, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import { backoffDelay } from '#common/backoff.ts';
import { systemClock } from '#common/clock.ts';
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
 * Brings back a pool whose file is still there but which zfs-fuse no longer lists (its
 * daemon restarted, or the pool was exported): `zpool import -d <dir of the file>`.
 * The datasets and their data are the file's; nothing is created or destroyed.
 */
export async function importPool(pool: string, file: string): Promise<void> {
  await zpoolTakingTurns(['import', '-d', dirname(file), pool], 120_000);
}

/**
 * Destroys a pool without force, retried with backoff while zfs-fuse says busy (it does so
 * transiently right after mounts and receives). `zpool destroy` unmounts the datasets itself
 * and ignores snapshot holds (a `zfs destroy -r` first would refuse held snapshots as busy).
 *
 * Never `-f`: a forced unmount aborts the FUSE connection under zfs-fuse, and after many
 * of those the daemon was seen to stop answering every umount machine-wide. A pool that
 * stays busy is an error the caller reports, not something to force.
 */
export async function destroyPool(pool: string, log: Logger): Promise<void> {
  await untilNotBusy(`destroy ${pool}`, log, async () => {
    if ((await listPools()).includes(pool)) await zpoolTakingTurns(['destroy', pool], 120_000);
  });
}

/** Runs `step` until it succeeds, retrying only zfs's "busy" for about a minute. */
async function untilNotBusy(what: string, log: Logger, step: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await step();
      return;
    } catch (err) {
      if (!isDroverError(err) || !err.retryable || attempt >= 10) throw err;
      log.debug({ what, attempt, err }, 'zfs busy, retried');
      await systemClock.sleep(backoffDelay({ initialMs: 250, capMs: 8_000 }, attempt + 1));
    }
  }
}

export async function removePoolFile(file: string): Promise<void> {
  await rm(file, { force: true });
}

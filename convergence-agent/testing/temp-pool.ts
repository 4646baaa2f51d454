/**
 * A throw-away zfs-fuse pool on a sparse file, for integration tests and the benchmark.
 * Named `drover-zt-<random>` so it never collides with another helper's pools; removed by
 * `destroy()` (which tolerates an already-gone pool).
 */
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DroverError } from '#common/errors.ts';
import { systemClock } from '#common/clock.ts';
import { execaRunner, type CommandRunner } from '../zfs/command.ts';

export interface TempPool {
  name: string;
  dir: string;
  /** Where datasets of this pool mount: `<dir>/mnt`. */
  mountRoot: string;
  destroy(): Promise<void>;
}

/** True when the zfs-fuse daemon answers (`zpool list` succeeds). */
export async function zfsAvailable(runner: CommandRunner = execaRunner): Promise<boolean> {
  try {
    return (await runner.run('zpool', ['list'], { timeoutMs: 10_000 })).exitCode === 0;
  } catch {
    return false;
  }
}

/** Creates a pool of `sizeMiB` (sparse) named `<prefix>-<random>`. */
export async function createTempPool(options: { sizeMiB?: number; prefix?: string; runner?: CommandRunner } = {}): Promise<TempPool> {
  const runner = options.runner ?? execaRunner;
  const name = `${options.prefix ?? 'drover-zt'}-${randomBytes(4).toString('hex')}`;
  const dir = await mkdtemp(join(tmpdir(), `${name}-`));
  const file = join(dir, 'pool.img');
  await writeFile(file, '');
  await truncate(file, (options.sizeMiB ?? 256) * 1024 * 1024);
  const created = await runner.run('zpool', ['create', '-m', 'none', name, file], { timeoutMs: 60_000 });
  if (created.exitCode !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new DroverError('DROVER_ZFS_COMMAND_FAILED', `zpool create ${name} failed: ${created.stderr.trim()}`);
  }
  // zfs-fuse's tiny ARC plus atime updates make reads look like modifications to `recv`.
  await runner.run('zfs', ['set', 'atime=off', name], { timeoutMs: 30_000 });
  return {
    name,
    dir,
    mountRoot: join(dir, 'mnt'),
    async destroy() {
      // Datasets first, one by one: `zpool destroy -f` over mounted zfs-fuse datasets can
      // leave their FUSE unmounts hanging, and the pool busy for good.
      const listed = await runner.run('zfs', ['list', '-H', '-o', 'name', '-d', '1', `${name}/drover`], { timeoutMs: 60_000 });
      const children = listed.exitCode === 0 ? listed.stdout.split('\n').filter((n) => n.startsWith(`${name}/drover/`)) : [];
      for (const child of children) {
        for (let attempt = 1; attempt <= 10; attempt++) {
          const r = await runner.run('zfs', ['destroy', '-r', child], { timeoutMs: 60_000 });
          if (r.exitCode === 0 || /does not exist/.test(r.stderr)) break;
          await systemClock.sleep(200 * attempt);
        }
      }
      for (let attempt = 1; attempt <= 10; attempt++) {
        const r = await runner.run('zpool', ['destroy', '-f', name], { timeoutMs: 60_000 });
        if (r.exitCode === 0 || /no such pool/i.test(r.stderr)) break;
        if (attempt === 10) throw new DroverError('DROVER_ZFS_BUSY', `zpool destroy ${name} failed: ${r.stderr.trim()}`);
        await systemClock.sleep(200 * attempt);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

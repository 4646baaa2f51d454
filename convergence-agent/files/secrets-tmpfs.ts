/**
 * The agent's secrets directory is a tmpfs (docs/DESIGN.md §22): secrets live in memory only,
 * never on the node's disk. For the first secret it writes, the agent mounts one there unless one
 * is mounted already (an agent restarted keeps the secrets of the containers that still run).
 */
import { mkdir, statfs } from 'node:fs/promises';
import { DroverError } from '#common/errors.ts';
import type { CommandRunner } from '../zfs/command.ts';
import { TMPFS_MAGIC } from './app-files.ts';

/** Mounts a tmpfs (mode 0700, 64 MiB, noexec) at `dir` unless `dir` is one already; answers whether it mounted. */
export async function ensureSecretsTmpfs(dir: string, runner: CommandRunner): Promise<boolean> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if ((await statfs(dir)).type === TMPFS_MAGIC) return false;
  const r = await runner.run('mount', ['-t', 'tmpfs', '-o', 'mode=0700,size=64m,noexec,nosuid,nodev', 'drover-secrets', dir], { timeoutMs: 10_000 });
  if (r.exitCode !== 0) throw new DroverError('DROVER_COMMAND_FAILED', `mount -t tmpfs at ${dir}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  return true;
}

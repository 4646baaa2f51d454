import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

/**
 * Copies every `*.log` of a local cluster (drover's services, each node's dockerd and sshd) to
 * `dir`, keeping their relative paths; returns how many were copied. Only regular `.log` files
 * are read (a services dir also holds sockets, and a node's dir its zfs-fuse mounts, which
 * are not descended into). Used by `useTestCluster` when a test of the file failed.
 */
export async function keepClusterLogs(root: string, dir: string): Promise<number> {
  let copied = 0;
  const walk = async (from: string, depth: number): Promise<void> => {
    const entries = await readdir(from, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = join(from, entry.name);
      if (entry.isFile() && entry.name.endsWith('.log')) {
        const to = join(dir, relative(root, path));
        await mkdir(join(to, '..'), { recursive: true });
        await copyFile(path, to).then(() => copied++, () => undefined);
      } else if (entry.isDirectory() && depth < 3 && entry.name !== 'zfs' && entry.name !== 'docker') {
        await walk(path, depth + 1);
      }
    }
  };
  await walk(root, 0);
  return copied;
}

/** Where a failed test file's logs go: `$DROVER_TEST_LOGS` (else /tmp/drover-test-logs)/<file>-<time>. */
export function failedLogsDir(testFile: string, now = new Date()): string {
  const base = process.env.DROVER_TEST_LOGS ?? '/tmp/drover-test-logs';
  const name = testFile.replace(/^.*\//, '').replace(/\.test\.ts$/, '');
  return join(base, `${name}-${now.toISOString().replace(/[:.]/g, '-')}`);
}

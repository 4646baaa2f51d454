import { readFile, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '#common/log.ts';
import { run } from './run.ts';

/**
 * What a crashed run can leave behind besides pools and bridges: mounts (overlay, netns,
 * zfs) under the node's directories, and container processes in the node's cgroup parent
 * once their dockerd and shims are gone.
 */

/** Mount points at or under any of `prefixes`, deepest first. */
export async function mountsUnder(prefixes: string[]): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const points = text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    // mountinfo escapes spaces and friends as octal.
    .map((point) => point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))))
    .filter((point) => prefixes.some((prefix) => point === prefix || point.startsWith(`${prefix}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

export async function unmountAll(prefixes: string[], log: Logger): Promise<void> {
  for (const point of await mountsUnder(prefixes)) {
    const { exitCode } = await run('umount', [point], { reject: false, timeoutMs: 30_000 });
    if (exitCode !== 0) await run('umount', ['-l', point], { reject: false, timeoutMs: 30_000 });
    log.debug({ point }, 'leftover mount removed');
  }
}

const CGROUP_ROOT = '/sys/fs/cgroup';

async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  } catch {
    return [];
  }
}

/** Every copy of cgroup `name` (directly under a hierarchy root), with its descendants, deepest first. */
async function cgroupTree(name: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const child of await subdirs(dir)) await walk(child);
    out.push(dir);
  };
  const hierarchies = [CGROUP_ROOT, ...(await subdirs(CGROUP_ROOT))];
  for (const hierarchy of hierarchies) {
    const dir = join(hierarchy, name);
    if ((await subdirs(hierarchy)).includes(dir)) await walk(dir);
  }
  return out;
}

/** Pids of every process in cgroup `name` and below (a node's containers). */
export async function cgroupPids(name: string): Promise<number[]> {
  const pids = new Set<number>();
  for (const dir of await cgroupTree(name)) {
    const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of procs.split('\n')) if (/^\d+$/.test(line)) pids.add(Number(line));
  }
  return [...pids];
}

/** Kills whatever still runs in cgroup `name` (a node's containers) and removes the cgroups. */
export async function clearCgroup(name: string, log: Logger): Promise<void> {
  const dirs = await cgroupTree(name);
  for (const dir of dirs) {
    const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const pid of procs.split('\n').filter((line) => /^\d+$/.test(line))) {
      try {
        process.kill(Number(pid), 'SIGKILL');
        log.debug({ pid, cgroup: dir }, 'leftover container process killed');
      } catch {
        // gone already
      }
    }
  }
  for (const dir of dirs) {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
}

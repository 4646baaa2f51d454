import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { systemClock } from '#common/clock.ts';
import { SYSTEM_PATH } from './run.ts';

/**
 * Daemons of a local cluster are found and ended by pid, never by name: several clusters
 * (and other people's daemons) run side by side on one machine. A pid is trusted only
 * when the process's command line still names one of the cluster's own paths, so a
 * recycled pid is never killed.
 */

export function readPidFile(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

export function cmdline(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.length === 0 ? null : raw.split('\0').filter((part) => part.length > 0);
  } catch {
    return null;
  }
}

function isZombie(pid: number): boolean {
  try {
    // The state is the field after the parenthesised command name.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !isZombie(pid);
}

/** Pids of live processes whose command line mentions any of `needles` (paths we own). */
export function processesMentioning(needles: string[]): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const args = cmdline(pid);
    if (args && args.some((arg) => needles.some((needle) => arg.includes(needle))) && !isZombie(pid)) found.push(pid);
  }
  return found;
}

/** Every live descendant of `pid` (children, their children, …), from /proc. */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const child of children.get(p) ?? []) {
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

/** The pid in `pidFile`, if that process is alive and its command line mentions `needle`. */
export function ownedPid(pidFile: string, needle: string): number | null {
  const pid = readPidFile(pidFile);
  if (pid === null || !isAlive(pid)) return null;
  const args = cmdline(pid);
  return args?.some((arg) => arg.includes(needle)) ? pid : null;
}

/**
 * Sends SIGTERM, waits up to `graceMs`, then SIGKILL and waits again (bounded). Resolves
 * true when the process is gone.
 */
export async function terminate(pid: number, graceMs = 20_000): Promise<boolean> {
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  if (await waitGone(pid, graceMs)) return true;
  signal('SIGKILL');
  return waitGone(pid, 5_000);
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await systemClock.sleep(50);
  }
  return !isAlive(pid);
}

/**
 * Starts a long-running program detached from this process (its own session), with
 * stdout and stderr appended to `logFile`. The program writes its own pid file.
 */
export function spawnDaemon(command: string, args: string[], logFile: string): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(command, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, PATH: SYSTEM_PATH },
    });
    child.on('error', () => {
      // reported through the readiness check that follows every start
    });
    child.unref();
    return child.pid ?? -1;
  } finally {
    closeSync(fd);
  }
}

/**
 * When have a container's processes all ended? Docker's stop returns only once dockerd has
 * also torn the container down (network, mounts): ~150–200 ms after its last process exited,
 * measured here. A migration's final snapshot needs only the processes gone — every write
 * they made is in the file system then — so the cutover waits for that, read from /proc:
 * no process left in the container's pid namespace.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { systemClock } from '#common/clock.ts';

/** The pid namespace of host process `pid` (`pid:[4026532…]`), or null when it is not visible from here. */
export async function pidNamespaceOf(pid: number): Promise<string | null> {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return readlink(`/proc/${pid}/ns/pid`).catch(() => null);
}

/** True while host process `pid` lives in pid namespace `ns`. */
export async function inNamespace(pid: string, ns: string): Promise<boolean> {
  return (await readlink(`/proc/${pid}/ns/pid`).catch(() => null)) === ns;
}

/**
 * Resolves once no process of pid namespace `ns` is left, `first` (its pid 1 on the host)
 * first, then any other; polls every `everyMs`. Never rejects; stops when `signal` aborts.
 */
export async function namespaceEmptied(ns: string, first: number, signal: AbortSignal, everyMs = 2): Promise<void> {
  const pause = (): Promise<void> => systemClock.sleep(everyMs);
  while (!signal.aborted && (await inNamespace(String(first), ns))) await pause();
  // pid 1 gone: the kernel kills the rest of the namespace; wait until they are gone too.
  while (!signal.aborted) {
    const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
    const left = await Promise.all(pids.map((p) => inNamespace(p, ns)));
    if (!left.includes(true)) return;
    await pause();
  }
}

/** A signal as `process.kill` takes it. */
export type StopSignal = NodeJS.Signals | number;

/**
 * Sends `signal` to host process `pid` when it is, as this process sees it, the first process
 * of container `containerId`: still in pid namespace `ns`, and its cgroup names the container
 * (so a pid read from dockerd in another pid namespace never signals a stranger). True when
 * sent; false when it could not be, and the caller stops the container through Docker.
 */
export async function signalled(pid: number, ns: string, containerId: string, signal: StopSignal): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1 || !/^[0-9a-f]{12,64}$/.test(containerId)) return false;
  const cgroup = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  if (!cgroup.includes(containerId) || !(await inNamespace(String(pid), ns))) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false; // gone already (ESRCH) or not ours to signal (EPERM): Docker's stop decides
  }
}

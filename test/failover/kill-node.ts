/**
 * A node of the local cluster dying as a host would, for the failover e2e tests and
 * `bench:failover`: every container's processes and their shims, dockerd and what it started
 * (containerd, docker-proxy), drover's agent (with its fence watchdog), proxy and plugin, and sshd with its connections —
 * all SIGKILL, nothing gets to clean up. Also pausing one process tree (SIGSTOP/SIGCONT).
 */
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { servicesStatus, type LocalCluster } from '../../local-cluster/index.ts';
import { childrenOf } from '../support/processes.ts';

export function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  for (const child of childrenOf(pid)) out.push(child, ...descendantsOf(child));
  return out;
}

function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

function pidIn(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

/** The pid of drover's service of `kind` (agent, proxy, plugin) on node `index`, or null. */
export function servicePid(cluster: LocalCluster, index: number, kind: string): number | null {
  return servicesStatus(cluster).find((s) => s.node === index && s.kind === kind)?.pid ?? null;
}

/** Kills node `index` whole; returns when the first SIGKILL went out (performance.now() and wall clock). */
export async function killNode(cluster: LocalCluster, index: number): Promise<{ at: number; wall: number }> {
  const node = cluster.nodes.find((n) => n.index === index)!;
  const victims = new Set<number>();
  const ps = await execa('docker', ['-H', node.dockerHost!, 'ps', '-q'], { reject: false, timeout: 30_000 });
  for (const id of ps.stdout.split('\n').filter(Boolean)) {
    const pid = Number((await execa('docker', ['-H', node.dockerHost!, 'inspect', '-f', '{{.State.Pid}}', id], { reject: false, timeout: 30_000 })).stdout.trim());
    if (pid > 0) {
      victims.add(pid);
      const shim = parentOf(pid);
      if (shim !== null && shim > 1) victims.add(shim);
    }
  }
  for (const daemon of ['dockerd', 'sshd']) {
    const pid = pidIn(`/run/drover/${cluster.name}/${node.name}/${daemon}.pid`);
    if (pid !== null) for (const p of [pid, ...descendantsOf(pid)]) victims.add(p);
  }
  // The services and what they started (the agent's fence watchdog process dies with its host too).
  for (const s of servicesStatus(cluster)) if (s.node === index && s.pid !== null) for (const p of [s.pid, ...descendantsOf(s.pid)]) victims.add(p);
  // The failure's time: the first SIGKILL (finding the pids above takes a while).
  const at = { at: performance.now(), wall: Date.now() };
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  return at;
}

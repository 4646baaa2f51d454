/**
 * An etcd cluster of 1–N members on this machine (Debian's `etcd-server`), for the control
 * plane on etcd (docs/DESIGN.md §28): the tests and the benchmark. (`drover cluster up
 * --control 3` runs its members as services of the cluster instead, on fixed addresses:
 * services-render.ts, docs/DESIGN.md §31.) Members listen on 127.0.0.1 ports found free, keep their data under `dir`,
 * and are detached daemons ended by pid (processes.ts).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { systemClock } from '#common/clock.ts';
import { isAlive, spawnDaemon, terminate } from './processes.ts';

export interface EtcdMember {
  name: string;
  pid: number;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  args: string[];
}

export interface EtcdCluster {
  dir: string;
  members: EtcdMember[];
  /** Client URLs of every member. */
  endpoints: string[];
}

/** A port nobody listens on right now on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `members` etcd members under `dir` (one data directory each) and waits until every
 * member answers its health endpoint. `extraArgs` go to every member (tests pass a short
 * `--auto-compaction-*` or none).
 */
export async function startEtcd(dir: string, members = 1, extraArgs: string[] = []): Promise<EtcdCluster> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ports = [];
  for (let i = 0; i < members; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const names = ports.map((_, i) => `m${i + 1}`);
  const initial = ports.map((p, i) => `${names[i]}=http://127.0.0.1:${p.peer}`).join(',');
  const cluster: EtcdCluster = { dir, members: [], endpoints: [] };
  for (const [i, p] of ports.entries()) {
    const name = names[i]!;
    const dataDir = join(dir, name);
    const clientUrl = `http://127.0.0.1:${p.client}`;
    const peerUrl = `http://127.0.0.1:${p.peer}`;
    const args = [
      '--name', name,
      '--data-dir', dataDir,
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', initial,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', `drover-${p.peer}`,
      ...extraArgs,
    ];
    const pid = spawnDaemon('etcd', args, join(dir, `${name}.log`));
    cluster.members.push({ name, pid, clientUrl, peerUrl, dataDir, args });
    cluster.endpoints.push(clientUrl);
  }
  try {
    await Promise.all(cluster.members.map((m) => waitHealthy(m)));
  } catch (err) {
    await stopEtcd(cluster, { remove: false });
    throw err;
  }
  return cluster;
}

/** Starts a member again after it was killed, with its data directory as it was. */
export async function restartMember(member: EtcdMember): Promise<void> {
  const args = member.args.map((a) => (a === 'new' ? 'existing' : a));
  member.pid = spawnDaemon('etcd', args, join(member.dataDir, '..', `${member.name}.log`));
  await waitHealthy(member);
}

async function waitHealthy(member: EtcdMember, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(member.pid)) throw new Error(`etcd member ${member.name} exited at start; see ${member.dataDir}/../${member.name}.log`);
    try {
      const res = await fetch(`${member.clientUrl}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok && ((await res.json()) as { health?: string }).health === 'true') return;
    } catch {
      // not yet
    }
    await systemClock.sleep(200);
  }
  throw new Error(`etcd member ${member.name} did not become healthy within ${timeoutMs} ms`);
}

/** Ends every member (by pid) and, unless `remove: false`, deletes `dir`. */
export async function stopEtcd(cluster: EtcdCluster, options: { remove?: boolean } = {}): Promise<void> {
  await Promise.all(cluster.members.map((m) => (isAlive(m.pid) ? terminate(m.pid, 10_000) : Promise.resolve(true))));
  if (options.remove !== false) rmSync(cluster.dir, { recursive: true, force: true });
}

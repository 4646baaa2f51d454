/**
 * Shared pieces of the replication tests: peers for a local-cluster node, random data,
 * content hashes of a dataset, a TCP forwarder that can cut every connection mid-stream,
 * and a recording Peer wrapper.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import type { LocalCluster, LocalNode } from '../../local-cluster/index.ts';
import { SshPeer } from '../../convergence-agent/transfer/ssh-peer.ts';
import type { Peer, PeerStep } from '../../convergence-agent/transfer/types.ts';
import type { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';

export async function sshPeerFor(
  cluster: LocalCluster,
  node: LocalNode,
  overrides: { host?: string; port?: number; hostKeyFingerprint?: string; id?: string } = {},
): Promise<SshPeer> {
  const ssh = node.ssh!;
  return new SshPeer({
    id: overrides.id ?? node.uuid,
    host: overrides.host ?? ssh.host,
    port: overrides.port ?? ssh.port,
    user: ssh.user,
    hostKeyFingerprint: overrides.hostKeyFingerprint ?? ssh.hostKeyFingerprint,
    privateKey: await readFile(cluster.sshClientKey.privateKeyPath),
    pool: node.pool,
  });
}

/** Writes `mib` MiB of random (incompressible) data to `path`. */
export async function writeRandom(path: string, mib: number): Promise<void> {
  const out = createWriteStream(path);
  const block = Buffer.allocUnsafe(1 << 20);
  for (let i = 0; i < mib; i++) {
    randomFillSync(block);
    if (!out.write(Buffer.from(block))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** name → sha256 of every regular file directly in `dir`. */
export async function hashFiles(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) if (entry.isFile()) out[entry.name] = await sha256(join(dir, entry.name));
  return out;
}

/** The file hashes of a (read-only, unmounted) replica: mounts it, hashes, unmounts. */
export async function replicaContents(store: ZfsStore, datasetId: string): Promise<Record<string, string>> {
  await store.mount(datasetId);
  try {
    const info = await store.getDataset(datasetId);
    return await hashFiles(info!.mountpoint!);
  } finally {
    await store.unmount(datasetId);
  }
}

/** `zfs set <prop>=<value> <name>` for test set-up (quotas that make a pool "full"). */
export function zfsSet(property: string, value: string, name: string): void {
  const r = spawnSync('zfs', ['set', `${property}=${value}`, name], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`zfs set ${property}=${value} ${name}: ${r.stderr}`);
}

/** `zfs get -Hp -o value <prop> <name>` as a number, for test set-up. */
export function zfsGetNumber(property: string, name: string): number {
  const r = spawnSync('zfs', ['get', '-Hp', '-o', 'value', property, name], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`zfs get ${property} ${name}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

/** A TCP forwarder (on 127.0.0.1 unless told) to `host:port`; `cut()` destroys every connection through it. */
export class TcpCutter {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  bytes = 0;
  /** When set, every connection is cut as soon as this many bytes were relayed towards the server. */
  cutAfterBytes: number | null = null;

  async listen(host: string, port: number, bind = '127.0.0.1'): Promise<number> {
    this.server = createServer((client) => {
      const upstream = connect(port, host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.on('data', (d: Buffer) => {
        this.bytes += d.length;
        if (this.cutAfterBytes !== null && this.bytes >= this.cutAfterBytes) {
          this.cutAfterBytes = null;
          this.cut();
        }
      });
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, bind, () => resolve()));
    return (this.server.address() as { port: number }).port;
  }

  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** A Peer that records which steps were begun, to show that nothing reached the peer. */
export class RecordingPeer implements Peer {
  readonly begun: string[] = [];
  constructor(private readonly inner: Peer) {}
  get id(): string {
    return this.inner.id;
  }
  features() {
    return this.inner.features();
  }
  beginStep(datasetId: string, options?: { waitMs?: number; signal?: AbortSignal }): Promise<PeerStep> {
    this.begun.push(datasetId);
    return this.inner.beginStep(datasetId, options);
  }
  close() {
    return this.inner.close();
  }
}

/**
 * `ssh -i <agents' key> root@<node> <command>` with OpenSSH's own client, `input` on stdin (the
 * agents' restricted key, so sshd runs its forced command): exit status, stdout, stderr. Ends
 * the client after 60 s.
 */
export function sshAsAgents(cluster: LocalCluster, node: LocalNode, command: string[], input: Buffer | string = ''): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const args = ['-T', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-i', cluster.sshClientKey.privateKeyPath, '-p', String(node.ssh!.port), `root@${node.ssh!.host}`, ...command];
  return new Promise((resolve) => {
    const child = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    const timer = setTimeout(() => child.kill(), 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/**
 * drover's processes for the migration e2e tests, on a local cluster: one control service on
 * a fixed port (so it can be restarted under the agents) and one agent per node, each the
 * real program as a child process with its log in `dir`. The faults the tests inject live
 * here too: SIGKILL an agent, restart the control service, cut a node's sshd.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { ApiClient } from '#common/api-client.ts';
import { nodeFlagsOf } from '#common/node-flags.ts';
import { systemClock } from '#common/clock.ts';
import { controlFiles, ensureClusterCertificates, nodeFiles, operatorTls, type LocalCluster, type LocalNode } from '../../local-cluster/index.ts';
import { ensureNodeCertificate } from '../../convergence-agent/transfer/tls-certs.ts';
import { childrenOf } from '../support/processes.ts';

const repo = resolve(import.meta.dirname, '../..');

export interface StackOptions {
  /** The agents' transport (default ssh); tls gets each node a certificate from the cluster CA. */
  transport?: 'ssh' | 'tls';
  /** agent.yml `migration.ack_wait_ms`: how long a cutover waits for the proxies' acks. */
  ackWaitMs?: number;
  pollIntervalMs?: number;
  /** More flags for drover-control (deadlines, say). */
  controlArgs?: string[];
}

/** Waits (bounded) until `probe` returns something truthy; returns it. */
export async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await systemClock.sleep(everyMs);
  }
}

export class MigrationStack {
  readonly controlUrl: string;
  readonly api: ApiClient;
  private control: ResultPromise | null = null;
  private readonly agents = new Map<number, ResultPromise>();

  private constructor(
    readonly cluster: LocalCluster,
    readonly dir: string,
    private readonly options: StackOptions,
    port: number,
  ) {
    // Mutual TLS, as in a real cluster (docs/DESIGN.md §23): the cluster CA's control
    // certificate (it names 127.0.0.1), each agent its node's, the test the operator's.
    this.controlUrl = `https://127.0.0.1:${port}`;
    this.api = new ApiClient({ baseUrl: this.controlUrl, tls: operatorTls(cluster) });
  }

  static async start(cluster: LocalCluster, dir: string, options: StackOptions = {}): Promise<MigrationStack> {
    await mkdir(dir, { recursive: true });
    await ensureClusterCertificates(cluster);
    const stack = new MigrationStack(cluster, dir, options, await freePort());
    try {
      await stack.startControl();
      for (const node of cluster.nodes) await stack.startAgent(node.index);
      await until('every agent to report', async () => (await stack.nodesUp()) === cluster.nodes.length, 180_000);
      return stack;
    } catch (err) {
      await stack.stop();
      throw err;
    }
  }

  node(index: number): LocalNode {
    const node = this.cluster.nodes.find((n) => n.index === index);
    if (!node) throw new Error(`no node ${index}`);
    return node;
  }

  async startControl(): Promise<void> {
    const tls = controlFiles(this.cluster);
    const args = ['--listen', this.controlUrl.slice('https://'.length), '--tls-ca', tls.ca, '--tls-cert', tls.cert, '--tls-key', tls.key, '--revoked', tls.revoked];
    this.control = this.spawn('control', 'bin/drover-control.js', [...args, '--data-dir', join(this.dir, 'control'), '--node-timeout', '30', ...(this.options.controlArgs ?? [])]);
    await until('the control service to answer', async () => (await this.api.version().catch(() => null)) !== null, 90_000);
  }

  /** Ends the control service (SIGKILL by default: no goodbye to anyone). */
  async killControl(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await end(this.control, signal);
    this.control = null;
  }

  async startAgent(index: number): Promise<void> {
    const node = this.node(index);
    const ssh = node.ssh;
    if (!ssh) throw new Error('the migration tests need sshd on every node');
    let transport = [
      'transport: ssh',
      `ssh: { port: ${ssh.port}, user: ${ssh.user}, host_key_fingerprint: "${ssh.hostKeyFingerprint}", private_key_file: ${this.cluster.sshClientKey.privateKeyPath} }`,
    ];
    if (this.options.transport === 'tls') {
      const dir = join(this.dir, `tls-${node.name}`);
      await ensureNodeCertificate({ ca: this.cluster.ca, dir, commonName: node.name, address: node.address });
      transport = ['transport: tls', `tls: { port: 4524, ca_file: ${this.cluster.ca.certPath}, cert_file: ${join(dir, 'node.crt')}, key_file: ${join(dir, 'node.key')} }`];
    }
    const config = [
      `control_url: ${this.controlUrl}`,
      `control_tls: { ca_file: ${nodeFiles(this.cluster, node).ca}, cert_file: ${nodeFiles(this.cluster, node).cert}, key_file: ${nodeFiles(this.cluster, node).key} }`,
      `state_dir: ${join(this.dir, `agent-${node.name}`)}`,
      `node_uuid_file: ${join(node.stateDir, 'uuid')}`,
      `address: ${node.address}`,
      `pool: ${node.pool}`,
      `docker_socket: ${node.dockerSocket}`,
      ...transport,
      `poll_interval_ms: ${this.options.pollIntervalMs ?? 500}`,
      'stop_timeout_seconds: 5',
      ...(this.options.ackWaitMs === undefined ? [] : [`migration: { ack_wait_ms: ${this.options.ackWaitMs} }`]),
    ].join('\n');
    const file = join(this.dir, `agent-${node.name}.yml`);
    await writeFile(file, config + '\n');
    this.agents.set(index, this.spawn(`agent-${node.name}`, 'bin/drover-agent.js', ['--config', file]));
  }

  /** Ends node `index`'s agent (SIGKILL by default: a crash; its containers keep running). */
  async killAgent(index: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await end(this.agents.get(index), signal);
    this.agents.delete(index);
  }

  /**
   * Cuts node `index`'s sshd: the listening daemon and every connection it serves, so an
   * established transfer breaks and a new one is refused. `restoreSsh` starts it again.
   */
  cutSsh(index: number): void {
    const pid = this.sshdPid(index);
    for (const child of childrenOf(pid)) process.kill(child, 'SIGKILL');
    process.kill(pid, 'SIGKILL');
  }

  async restoreSsh(index: number): Promise<void> {
    const node = this.node(index);
    const dir = join(node.stateDir, 'sshd');
    const child = execa('/usr/sbin/sshd', ['-D', '-f', join(dir, 'sshd_config'), '-E', join(dir, 'sshd.log')], { detached: true, stdio: 'ignore', reject: false });
    child.unref();
    await until(`sshd of ${node.name} back`, async () => {
      try {
        return this.sshdPid(index) > 0;
      } catch {
        return false;
      }
    }, 10_000);
  }

  /**
   * A proxy that long-polls the route table and never acks it: a cutover then waits its whole
   * `ackWaitMs` before stopping the application — a window in which a test injects its fault.
   */
  silentProxy(uuid = 'eeeeeeee-0000-4000-8000-00000000000e'): { stop: () => Promise<void> } {
    const controller = new AbortController();
    const poller = new ApiClient({ baseUrl: this.controlUrl, timeoutMs: 5_000, getAttempts: 1, tls: operatorTls(this.cluster) });
    const done = (async () => {
      let after: number | undefined;
      while (!controller.signal.aborted) {
        try {
          after = (await poller.routes({ ...(after === undefined ? {} : { after }), waitMs: 2_000, nodeUuid: uuid, signal: controller.signal })).version;
        } catch {
          await systemClock.sleep(200, controller.signal);
        }
      }
    })();
    return {
      stop: async () => {
        controller.abort();
        await done;
      },
    };
  }

  /** Agents, then the control service. */
  async stop(): Promise<void> {
    for (const index of [...this.agents.keys()]) await this.killAgent(index, 'SIGTERM');
    await end(this.control ?? undefined, 'SIGTERM');
    this.control = null;
  }

  async nodesUp(): Promise<number> {
    const nodes = await this.api.nodes().catch(() => []);
    return this.cluster.nodes.filter((n) => nodes.some((s) => s.uuid === n.uuid && s.state === 'known')).length;
  }

  private sshdPid(index: number): number {
    const node = this.node(index);
    const file = join('/run/drover', this.cluster.name, node.name, 'sshd.pid');
    const pid = Number(readFileSync(file, 'utf8').trim());
    process.kill(pid, 0);
    return pid;
  }

  private spawn(name: string, bin: string, args: string[]): ResultPromise {
    return execa('node', [...nodeFlagsOf(join(repo, bin)), join(repo, bin), ...args], {
      cwd: repo,
      reject: false,
      stdout: { file: join(this.dir, `${name}.log`), append: true },
      stderr: { file: join(this.dir, `${name}.log`), append: true },
    });
  }
}


async function end(child: ResultPromise | null | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null) return;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await child;
  clearTimeout(timer);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * drover's own processes on a local cluster, for the volume plugin's e2e test and its
 * benchmark: one control service, an agent and a volume plugin per node, each the real
 * program (`bin/drover-*.js`) as a child process with its log in `dir`. They talk mutual
 * TLS as in a real cluster (docs/DESIGN.md §23): the control service with the cluster CA's
 * control certificate (it names 127.0.0.1), each agent and plugin with its node's, the test
 * as the operator.
 *
 * `stop` ends them plugins first (each removes its socket), then agents, then the control
 * service. Callers remove their containers and volumes before, and take the cluster (its
 * dockerds) down after.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { nodeFlagsOf } from '#common/node-flags.ts';
import { execa, type ResultPromise } from 'execa';
import { controlFiles, ensureClusterCertificates, nodeFiles, operatorTls, type LocalCluster, type LocalNode } from '../../local-cluster/index.ts';
import { systemClock } from '#common/clock.ts';
import { tlsFetch, type FetchLike } from '#common/tls-client.ts';
import { socketAnswers, socketPathFor } from '../../volume-driver/plugin-server.ts';

const repo = resolve(import.meta.dirname, '../..');

export interface StackOptions {
  /** Start an agent per node (default true). */
  agents?: boolean;
  /** Seconds a Mount waits for a volume to arrive (the plugin's --mount-timeout). */
  mountTimeoutS?: number;
  logLevel?: string;
  /** The plugins' log level, when it should differ (debug logs every call with its time). */
  pluginLogLevel?: string;
}

export class DroverStack {
  readonly controlUrl: string;
  private readonly plugins = new Map<number, ResultPromise>();
  private readonly agents = new Map<number, ResultPromise>();
  private control: ResultPromise | null = null;
  private readonly fetch: FetchLike;

  private constructor(
    private readonly cluster: LocalCluster,
    private readonly dir: string,
    private readonly options: StackOptions,
    port: number,
  ) {
    this.controlUrl = `https://127.0.0.1:${port}`;
    this.fetch = tlsFetch(operatorTls(cluster));
  }

  static async start(cluster: LocalCluster, dir: string, options: StackOptions = {}): Promise<DroverStack> {
    await mkdir(dir, { recursive: true });
    await ensureClusterCertificates(cluster);
    const stack = new DroverStack(cluster, dir, options, await freePort());
    try {
      const tls = controlFiles(cluster);
      const listen = stack.controlUrl.slice('https://'.length);
      stack.control = stack.spawn('control', 'bin/drover-control.js', ['--listen', listen, '--tls-ca', tls.ca, '--tls-cert', tls.cert, '--tls-key', tls.key, '--revoked', tls.revoked, '--data-dir', join(dir, 'control')]);
      await until(async () => (await stack.get('/v1/version').catch(() => null))?.ok === true, 30_000, 'the control service to answer');
      if (options.agents !== false) {
        for (const node of cluster.nodes) await stack.startAgent(node);
        await until(async () => (await stack.nodesUp()) === cluster.nodes.length, 60_000, 'every agent to report');
      }
      for (const node of cluster.nodes) await stack.startPlugin(node.index);
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

  async startPlugin(index: number): Promise<void> {
    const node = this.node(index);
    const tls = nodeFiles(this.cluster, node);
    const args = ['--name', node.pluginName, '--control', this.controlUrl, '--tls-ca', tls.ca, '--tls-cert', tls.cert, '--tls-key', tls.key, '--node-uuid', node.uuid, '--state-dir', join(this.dir, `plugin-${node.name}`)];
    if (this.options.mountTimeoutS) args.push('--mount-timeout', String(this.options.mountTimeoutS));
    if (node.dockerSocket) args.push('--docker-socket', node.dockerSocket);
    // Each node's plugin on its own metrics port: both share this host's loopback.
    args.push('--metrics-listen', `127.0.0.1:${await freePort()}`);
    const child = this.spawn(`plugin-${node.name}`, 'bin/drover-volume.js', args, this.options.pluginLogLevel);
    this.plugins.set(index, child);
    const socket = socketPathFor(node.pluginName);
    await until(async () => child.exitCode !== null || (existsSync(socket) && (await socketAnswers(socket))), 30_000, `plugin ${node.pluginName} to listen`);
    if (child.exitCode !== null) throw new Error(`plugin ${node.pluginName} exited (${child.exitCode}); see ${join(this.dir, `plugin-${node.name}.log`)}`);
  }

  /** SIGTERM, as an operator stops it; resolves once it has exited. */
  async stopPlugin(index: number): Promise<void> {
    await end(this.plugins.get(index));
    this.plugins.delete(index);
  }

  /** Plugins (sockets removed), agents, control service: in that order. */
  async stop(): Promise<void> {
    for (const index of [...this.plugins.keys()]) await this.stopPlugin(index);
    for (const [index, agent] of this.agents) {
      await end(agent);
      this.agents.delete(index);
    }
    await end(this.control ?? undefined);
    this.control = null;
  }

  /** GET `path` of the control service's API as the operator. */
  async api<T>(path: string): Promise<T> {
    const response = await this.get(path);
    if (!response.ok) throw new Error(`GET ${path}: ${response.status}`);
    return (await response.json()) as T;
  }

  private get(path: string): Promise<Response> {
    return this.fetch(this.controlUrl + path, { method: 'GET', headers: {}, body: null, signal: AbortSignal.timeout(10_000) });
  }

  private async startAgent(node: LocalNode): Promise<void> {
    const tls = nodeFiles(this.cluster, node);
    const config = [
      `control_url: ${this.controlUrl}`,
      `control_tls: { ca_file: ${tls.ca}, cert_file: ${tls.cert}, key_file: ${tls.key} }`,
      `state_dir: ${join(this.dir, `agent-${node.name}`)}`,
      `node_uuid_file: ${join(node.stateDir, 'uuid')}`,
      `address: ${node.address}`,
      `pool: ${node.pool}`,
      `docker_socket: ${node.dockerSocket}`,
      ...(node.ssh
        ? [
            'transport: ssh',
            `ssh: { port: ${node.ssh.port}, user: ${node.ssh.user}, host_key_fingerprint: "${node.ssh.hostKeyFingerprint}", private_key_file: "${this.cluster.sshClientKey.privateKeyPath}" }`,
          ]
        : ['transport: tls', 'tls: { port: 4524 }']),
      'poll_interval_ms: 1000',
      'stop_timeout_seconds: 1',
      `metrics_listen: 127.0.0.1:${await freePort()}`,
    ].join('\n');
    const file = join(this.dir, `agent-${node.name}.yml`);
    await writeFile(file, config + '\n');
    this.agents.set(node.index, this.spawn(`agent-${node.name}`, 'bin/drover-agent.js', ['--config', file]));
  }

  private async nodesUp(): Promise<number> {
    const nodes = await this.api<Array<{ uuid: string; state: string }>>('/v1/state/nodes').catch(() => []);
    return this.cluster.nodes.filter((n) => nodes.some((s) => s.uuid === n.uuid && s.state === 'known')).length;
  }

  /** Where a program's log goes: `<dir>/<name>.log` (`plugin-n1`, `agent-n1`, `control`). */
  logFile(name: string): string {
    return join(this.dir, `${name}.log`);
  }

  private spawn(name: string, bin: string, args: string[], logLevel?: string): ResultPromise {
    return execa('node', [...nodeFlagsOf(join(repo, bin)), join(repo, bin), ...args], {
      cwd: repo,
      reject: false,
      stdout: { file: join(this.dir, `${name}.log`), append: true },
      stderr: { file: join(this.dir, `${name}.log`), append: true },
      env: { DROVER_LOG_LEVEL: logLevel ?? this.options.logLevel ?? 'info' },
    });
  }
}

async function end(child: ResultPromise | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  const exited = await Promise.race([child.then(() => true), systemClock.sleep(15_000).then(() => false)]);
  if (!exited) {
    child.kill('SIGKILL');
    await child;
  }
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await systemClock.sleep(100);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

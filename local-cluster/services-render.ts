import { join } from 'node:path';
import type { LocalCluster, LocalNode } from './types.ts';

/**
 * drover's own processes on a local cluster — where their files live, how they are named,
 * what their configuration says. Pure: no I/O.
 *
 * Everything sits under `<root>/services/`, so teardown finds a process of ours by a path
 * in its command line even when its pid file is lost (a crashed run):
 *   control/            the control service's data dir (desired.json)
 *   control.pid|.log
 *   n<i>/agent.yml      n<i>/agent/ (state dir)    n<i>/proxy.yml    n<i>/plugin/ (state dir)
 *   n<i>-agent.pid|.log n<i>-proxy.pid|.log        n<i>-plugin.pid|.log
 */

export const CONTROL_PORT = 4523;

/** The order `down` stops them in: plugins first (each removes its socket), control last. */
export const SERVICE_KINDS = ['plugin', 'proxy', 'agent', 'control'] as const;
export type ServiceKind = (typeof SERVICE_KINDS)[number];

export interface ServiceSpec {
  /** 'control', 'n1-agent', 'n1-proxy', 'n1-plugin' */
  name: string;
  kind: ServiceKind;
  /** Index of its node; null for the control service. */
  node: number | null;
  /** `bin/<program>.js` */
  program: string;
  args: string[];
  pidFile: string;
  logFile: string;
  /** Files written before the start: path → content. */
  files: Record<string, string>;
}

export function servicesDir(root: string): string {
  return join(root, 'services');
}

/**
 * The control service's address: 127.0.0.1:4523 for the cluster `demo` (the CLI's default),
 * else node 1's address (127.0.S.11:4523), so clusters on other subnets never collide.
 */
export function controlAddress(cluster: Pick<LocalCluster, 'name' | 'nodes'>): { host: string; port: number } {
  const first = cluster.nodes.find((n) => n.index === 1) ?? cluster.nodes[0];
  const host = cluster.name === 'demo' || first === undefined ? '127.0.0.1' : first.address;
  return { host, port: CONTROL_PORT };
}

export function controlUrl(cluster: Pick<LocalCluster, 'name' | 'nodes'>): string {
  const { host, port } = controlAddress(cluster);
  return `http://${host}:${port}`;
}

function quote(value: string): string {
  return JSON.stringify(value); // a JSON string is a valid YAML double-quoted scalar
}

/** A node's agent.yml: control, address, pool, its dockerd, its sshd's endpoint and host key, state dir. */
export function renderAgentConfig(cluster: LocalCluster, node: LocalNode): string {
  const dir = join(servicesDir(cluster.root), node.name);
  const lines = [
    `# ${node.name} of the local cluster '${cluster.name}' (written by drover cluster up)`,
    `control_url: ${quote(controlUrl(cluster))}`,
    `state_dir: ${quote(join(dir, 'agent'))}`,
    `node_uuid_file: ${quote(join(node.stateDir, 'uuid'))}`,
    `address: ${quote(node.address)}`,
    `pool: ${quote(node.pool)}`,
  ];
  if (node.dockerSocket !== null) lines.push(`docker_socket: ${quote(node.dockerSocket)}`);
  if (node.ssh !== null) {
    lines.push(
      'transport: ssh',
      'ssh:',
      `  port: ${node.ssh.port}`,
      `  user: ${quote(node.ssh.user)}`,
      `  host_key_fingerprint: ${quote(node.ssh.hostKeyFingerprint)}`,
      `  private_key_file: ${quote(cluster.sshClientKey.privateKeyPath)}`,
    );
  }
  lines.push(`labels: { name: ${quote(node.name)} }`, 'poll_interval_ms: 1000', 'stop_timeout_seconds: 10');
  return `${lines.join('\n')}\n`;
}

/** A node's proxy.yml: its node, listening on the node's address. */
export function renderProxyConfig(cluster: LocalCluster, node: LocalNode): string {
  return [
    `# the proxy of ${node.name} of the local cluster '${cluster.name}' (written by drover cluster up)`,
    `control: ${quote(controlUrl(cluster))}`,
    `node_uuid: ${quote(node.uuid)}`,
    `listen_host: ${quote(node.address)}`,
    '',
  ].join('\n');
}

/** Every process of the cluster, in start order: control, then per node agent, proxy, plugin. */
export function serviceSpecs(cluster: LocalCluster): ServiceSpec[] {
  const dir = servicesDir(cluster.root);
  const url = controlUrl(cluster);
  const { host, port } = controlAddress(cluster);
  const spec = (name: string, kind: ServiceKind, node: number | null, program: string, args: string[], files: Record<string, string> = {}): ServiceSpec => ({
    name,
    kind,
    node,
    program,
    args,
    pidFile: join(dir, `${name}.pid`),
    logFile: join(dir, `${name}.log`),
    files,
  });
  const specs = [spec('control', 'control', null, 'bin/drover-control.js', ['--listen', `${host}:${port}`, '--data-dir', join(dir, 'control')])];
  for (const node of cluster.nodes) {
    const nodeDir = join(dir, node.name);
    const agentYml = join(nodeDir, 'agent.yml');
    const proxyYml = join(nodeDir, 'proxy.yml');
    specs.push(
      spec(`${node.name}-agent`, 'agent', node.index, 'bin/drover-agent.js', ['--config', agentYml], { [agentYml]: renderAgentConfig(cluster, node) }),
      spec(`${node.name}-proxy`, 'proxy', node.index, 'bin/drover-proxy.js', ['--config', proxyYml], { [proxyYml]: renderProxyConfig(cluster, node) }),
      spec(`${node.name}-plugin`, 'plugin', node.index, 'bin/drover-volume.js', [
        '--name',
        node.pluginName,
        '--control',
        url,
        '--node-uuid-file',
        join(node.stateDir, 'uuid'),
        '--state-dir',
        join(nodeDir, 'plugin'),
      ]),
    );
  }
  return specs;
}

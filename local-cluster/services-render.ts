import { join } from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { DroverError } from '#common/errors.ts';
import { METRICS_PORTS } from '#common/metrics-listener.ts';
// The components' own configuration schemas (their config modules only): a file the
// harness writes that a component would refuse fails here, when it is rendered.
import { AgentConfig } from '../convergence-agent/config.ts';
import { readConfig as readControlConfig } from '../control-service/config.ts';
import { ProxyConfig } from '../proxy/config.ts';
import { isolatedNetwork, nodeExec } from './netns.ts';
import type { LocalCluster, LocalNode } from './types.ts';
import { serviceSubnet } from './layout.ts';
import { controlFiles, nodeFiles } from './certs.ts';
import type { TlsFiles } from '#common/tls-client.ts';

function tlsFlags(files: TlsFiles): string[] {
  return ['--tls-ca', files.ca, '--tls-cert', files.cert, '--tls-key', files.key];
}

/**
 * drover's own processes on a local cluster — where their files live, how they are named,
 * what their configuration says, built as objects and checked with each component's own
 * schema before it is written as YAML. Pure: no I/O.
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
  /** Runs the program inside its node's namespaces (an isolated cluster's node services): `nsenter … --`; else empty. */
  prefix: string[];
}

export function servicesDir(root: string): string {
  return join(root, 'services');
}

/**
 * The control service's address: 127.0.0.1:4523 for the cluster `demo` (the CLI's default),
 * else node 1's address (127.0.S.11:4523), so clusters on other subnets never collide.
 */
export function controlAddress(cluster: Pick<LocalCluster, 'name' | 'nodes' | 'isolated'>): { host: string; port: number } {
  const first = cluster.nodes.find((n) => n.index === 1) ?? cluster.nodes[0];
  // Isolated nodes (§20): in the root namespace, on the cluster bridge every node reaches.
  if (cluster.isolated === true && first !== undefined) return { host: isolatedNetwork(Number(first.address.split('.')[2])).gateway, port: CONTROL_PORT };
  const host = cluster.name === 'demo' || first === undefined ? '127.0.0.1' : first.address;
  return { host, port: CONTROL_PORT };
}

export function controlUrl(cluster: Pick<LocalCluster, 'name' | 'nodes' | 'isolated'>): string {
  const { host, port } = controlAddress(cluster);
  return `https://${host}:${port}`;
}

/**
 * Where a process of the cluster serves /metrics (docs/DESIGN.md §25): a node's processes on
 * the node's own address, the control service beside its API, each on drover's default port
 * for its program — so nodes (and clusters on other subnets) never collide.
 */
export function metricsAddress(cluster: Pick<LocalCluster, 'name' | 'nodes'>, kind: ServiceKind, node: Pick<LocalNode, 'address'> | null): string {
  const host = node === null ? controlAddress(cluster).host : node.address;
  return `${host}:${METRICS_PORTS[kind]}`;
}

/** `schema.parse(value)`, turning a drift between the harness and a component into DROVER_CLUSTER_CONFIG_INVALID. */
function validated<T>(what: string, value: T, check: (value: T) => unknown): T {
  try {
    check(value);
  } catch (err) {
    const issues = err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ') : (err as Error).message;
    throw new DroverError('DROVER_CLUSTER_CONFIG_INVALID', `the local cluster's ${what} does not pass the component's own schema: ${issues}`, { detail: { what }, cause: err });
  }
  return value;
}

/**
 * YAML of `config` with a header comment. What the harness chose is written, not the
 * parsed result: the component applies its own defaults when it reads the file.
 */
function yamlFile(header: string, config: object): string {
  return `# ${header} (written by drover cluster up)\n${stringify(config)}`;
}

/** The node's service subnet, from its index and the cluster's subnet S (its address is 127.0.S.(10+i), layout.ts). */
function nodeServiceSubnet(node: LocalNode): string {
  return serviceSubnet(Number(node.address.split('.')[2]), node.index);
}

/** A node's agent.yml settings: control, address, pool, its dockerd, its sshd's endpoint and host key, state dir. */
export function agentConfig(cluster: LocalCluster, node: LocalNode): z.input<typeof AgentConfig> {
  const dir = join(servicesDir(cluster.root), node.name);
  const tls = nodeFiles(cluster, node);
  const config: z.input<typeof AgentConfig> = {
    control_url: controlUrl(cluster),
    control_tls: { ca_file: tls.ca, cert_file: tls.cert, key_file: tls.key },
    state_dir: join(dir, 'agent'),
    node_uuid_file: join(node.stateDir, 'uuid'),
    address: node.address,
    service_subnet: nodeServiceSubnet(node),
    pool: node.pool,
    ...(node.dockerSocket !== null ? { docker_socket: node.dockerSocket } : {}),
    ...(node.ssh !== null
      ? {
          transport: 'ssh' as const,
          ssh: {
            port: node.ssh.port,
            user: node.ssh.user,
            host_key_fingerprint: node.ssh.hostKeyFingerprint,
            private_key_file: cluster.sshClientKey.privateKeyPath,
          },
        }
      : {}),
    labels: { name: node.name },
    poll_interval_ms: 1000,
    stop_timeout_seconds: 10,
    metrics_listen: metricsAddress(cluster, 'agent', node),
  };
  return validated(`agent.yml of ${node.name}`, config, (c) => AgentConfig.parse(c));
}

/** A node's agent.yml (agentConfig as YAML). @throws DROVER_CLUSTER_CONFIG_INVALID */
export function renderAgentConfig(cluster: LocalCluster, node: LocalNode): string {
  return yamlFile(`${node.name} of the local cluster '${cluster.name}'`, agentConfig(cluster, node));
}

/** A node's proxy.yml settings: its node, listening on the node's address. */
export function proxyConfig(cluster: LocalCluster, node: LocalNode): z.input<typeof ProxyConfig> {
  const tls = nodeFiles(cluster, node);
  const config = { control: controlUrl(cluster), control_ca: tls.ca, control_cert: tls.cert, control_key: tls.key, node_uuid: node.uuid, listen_host: node.address, service_subnet: nodeServiceSubnet(node), metrics_listen: metricsAddress(cluster, 'proxy', node) };
  return validated(`proxy.yml of ${node.name}`, config, (c) => ProxyConfig.parse(c));
}

/** A node's proxy.yml (proxyConfig as YAML). @throws DROVER_CLUSTER_CONFIG_INVALID */
export function renderProxyConfig(cluster: LocalCluster, node: LocalNode): string {
  return yamlFile(`the proxy of ${node.name} of the local cluster '${cluster.name}'`, proxyConfig(cluster, node));
}

/** The control service's command line, checked by its own reader. @throws DROVER_CLUSTER_CONFIG_INVALID */
export function controlArgs(cluster: LocalCluster): string[] {
  const { host, port } = controlAddress(cluster);
  const tls = controlFiles(cluster);
  const args = ['--listen', `${host}:${port}`, '--data-dir', join(servicesDir(cluster.root), 'control'), '--tls-ca', tls.ca, '--tls-cert', tls.cert, '--tls-key', tls.key, '--revoked', tls.revoked, '--metrics-listen', metricsAddress(cluster, 'control', null)];
  return validated('control service command line', args, (a) => readControlConfig(a, {}));
}

/** Every process of the cluster, in start order: control, then per node agent, proxy, plugin. */
export function serviceSpecs(cluster: LocalCluster): ServiceSpec[] {
  const dir = servicesDir(cluster.root);
  const url = controlUrl(cluster);
  const spec = (name: string, kind: ServiceKind, node: number | null, program: string, args: string[], files: Record<string, string> = {}): ServiceSpec => ({
    name,
    kind,
    node,
    program,
    args,
    pidFile: join(dir, `${name}.pid`),
    logFile: join(dir, `${name}.log`),
    files,
    prefix: node !== null && cluster.isolated === true ? nodeExec(cluster.name, node) : [],
  });
  const specs = [spec('control', 'control', null, 'bin/drover-control.js', controlArgs(cluster))];
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
        ...(node.dockerSocket === null ? [] : ['--docker-socket', node.dockerSocket]),
        ...tlsFlags(nodeFiles(cluster, node)),
        '--metrics-listen',
        metricsAddress(cluster, 'plugin', node),
      ]),
    );
  }
  return specs;
}

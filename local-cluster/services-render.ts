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
 * With several control services (`controls`, docs/DESIGN.md §31) instead of `control`:
 *   c<j>-control/       control service j's data dir; c<j>-control.pid|.log
 *   control.key         the secrets key every control service of the cluster shares
 *   etcd/m<j>/          etcd member j's data dir;    m<j>-etcd.pid|.log
 */

export const CONTROL_PORT = 4523;
/** etcd's client and peer ports on each control service's address (not 2379/2380: a system etcd may have those). */
export const ETCD_CLIENT_PORT = 12379;
export const ETCD_PEER_PORT = 12380;

/** The order `down` stops them in: plugins first (each removes its socket), control, then etcd last. */
export const SERVICE_KINDS = ['plugin', 'proxy', 'agent', 'control', 'etcd'] as const;
export type ServiceKind = (typeof SERVICE_KINDS)[number];

export interface ServiceSpec {
  /** 'control', 'n1-agent', 'n1-proxy', 'n1-plugin' */
  name: string;
  kind: ServiceKind;
  /** Index of its node; null for the control service. */
  node: number | null;
  /** `bin/<program>.js`, run with node; or, with `executable`, a program on the system PATH (etcd). */
  program: string;
  executable?: boolean;
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

type ClusterShape = Pick<LocalCluster, 'name' | 'nodes' | 'isolated' | 'controls'>;

/**
 * The address of each control service (docs/DESIGN.md §31): the first is `controlAddress`;
 * control service j > 1 listens on 127.0.0.j for `demo`, else on 127.0.S.(10+j) (node j's
 * address, or the next ones of the subnet). etcd member j runs beside it, on the same address.
 */
export function controlHosts(cluster: ClusterShape): string[] {
  const first = controlAddress(cluster).host;
  const count = cluster.controls ?? 1;
  const subnet = first.split('.')[2];
  return Array.from({ length: count }, (_, i) => (i === 0 ? first : cluster.name === 'demo' ? `127.0.0.${i + 1}` : `127.0.${subnet}.${11 + i}`));
}

/** Every control service's URL, the first being `controlUrl`: what agents, proxies, plugins and the CLI are given. */
export function controlUrls(cluster: ClusterShape): string[] {
  return controlHosts(cluster).map((host) => `https://${host}:${CONTROL_PORT}`);
}

/** What a node's agent.yml and proxy.yml say: one URL, or the list of every control service's. */
function controlEndpoints(cluster: ClusterShape): string | string[] {
  const urls = controlUrls(cluster);
  return urls.length === 1 ? urls[0]! : urls;
}

/** The etcd members' client URLs (a cluster with several control services); [] with the file store. */
export function etcdEndpoints(cluster: ClusterShape): string[] {
  return (cluster.controls ?? 1) > 1 ? controlHosts(cluster).map((host) => `http://${host}:${ETCD_CLIENT_PORT}`) : [];
}

/**
 * Where a process of the cluster serves /metrics (docs/DESIGN.md §25): a node's processes on
 * the node's own address, the control service beside its API, each on drover's default port
 * for its program — so nodes (and clusters on other subnets) never collide.
 */
export function metricsAddress(cluster: Pick<LocalCluster, 'name' | 'nodes'>, kind: Exclude<ServiceKind, 'etcd'>, node: Pick<LocalNode, 'address'> | null, controlHost?: string): string {
  const host = node === null ? (controlHost ?? controlAddress(cluster).host) : node.address;
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
    control_url: controlEndpoints(cluster),
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
  const config = { control: controlEndpoints(cluster), control_ca: tls.ca, control_cert: tls.cert, control_key: tls.key, node_uuid: node.uuid, listen_host: node.address, service_subnet: nodeServiceSubnet(node), metrics_listen: metricsAddress(cluster, 'proxy', node), state_dir: join(servicesDir(cluster.root), node.name, 'proxy') };
  return validated(`proxy.yml of ${node.name}`, config, (c) => ProxyConfig.parse(c));
}

/** A node's proxy.yml (proxyConfig as YAML). @throws DROVER_CLUSTER_CONFIG_INVALID */
export function renderProxyConfig(cluster: LocalCluster, node: LocalNode): string {
  return yamlFile(`the proxy of ${node.name} of the local cluster '${cluster.name}'`, proxyConfig(cluster, node));
}

/** Control service j's name: `control` alone on the file store, else `c<j>-control`. */
export function controlName(cluster: Pick<LocalCluster, 'controls'>, j: number): string {
  return (cluster.controls ?? 1) > 1 ? `c${j}-control` : 'control';
}

/**
 * Control service j's command line (1-based), checked by its own reader: on the file store
 * alone, or on the cluster's etcd with every other (its identity `c<j>`, followers redirecting
 * writes to its address, the secrets key file shared by all). @throws DROVER_CLUSTER_CONFIG_INVALID
 */
export function controlArgs(cluster: LocalCluster, j = 1): string[] {
  const host = controlHosts(cluster)[j - 1]!;
  const dir = servicesDir(cluster.root);
  const tls = controlFiles(cluster);
  const args = ['--listen', `${host}:${CONTROL_PORT}`, '--data-dir', join(dir, controlName(cluster, j)), '--tls-ca', tls.ca, '--tls-cert', tls.cert, '--tls-key', tls.key, '--revoked', tls.revoked, '--metrics-listen', metricsAddress(cluster, 'control', null, host)];
  if ((cluster.controls ?? 1) > 1) {
    args.push('--store', 'etcd', '--etcd-endpoints', etcdEndpoints(cluster).join(','), '--identity', `c${j}`, '--advertise', `https://${host}:${CONTROL_PORT}`, '--secrets-key', join(dir, 'control.key'));
  }
  return validated('control service command line', args, (a) => readControlConfig(a, {}));
}

/** etcd member j's command line (Debian's etcd-server 3.4): its data under `<services>/etcd/m<j>`, on control service j's address. */
export function etcdArgs(cluster: LocalCluster, j: number): string[] {
  const hosts = controlHosts(cluster);
  const peer = (h: string) => `http://${h}:${ETCD_PEER_PORT}`;
  const client = `http://${hosts[j - 1]!}:${ETCD_CLIENT_PORT}`;
  return [
    '--name', `m${j}`,
    '--data-dir', join(servicesDir(cluster.root), 'etcd', `m${j}`),
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', peer(hosts[j - 1]!),
    '--initial-advertise-peer-urls', peer(hosts[j - 1]!),
    // Read only when the data directory is new; a member started again rejoins from its data.
    '--initial-cluster', hosts.map((h, i) => `m${i + 1}=${peer(h)}`).join(','),
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', `drover-${cluster.name}`,
    '--auto-compaction-mode', 'periodic',
    '--auto-compaction-retention', '5m',
  ];
}

/** Every process of the cluster, in start order: control, then per node agent, proxy, plugin. */
export function serviceSpecs(cluster: LocalCluster): ServiceSpec[] {
  const dir = servicesDir(cluster.root);
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
  const specs: ServiceSpec[] = [];
  const controls = cluster.controls ?? 1;
  if (controls > 1) {
    for (let j = 1; j <= controls; j++) specs.push({ ...spec(`m${j}-etcd`, 'etcd', null, 'etcd', etcdArgs(cluster, j)), executable: true });
  }
  for (let j = 1; j <= controls; j++) specs.push(spec(controlName(cluster, j), 'control', null, 'bin/drover-control.js', controlArgs(cluster, j)));
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
        controlUrls(cluster).join(','),
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

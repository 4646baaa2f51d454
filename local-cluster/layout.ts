import { isAbsolute, join, normalize } from 'node:path';
import { DroverError } from '#common/errors.ts';

/**
 * Where everything of a local cluster lives and what it is called. Pure: no I/O.
 *
 * Every name a cluster creates outside its root directory carries the cluster name, so
 * teardown (and the clean-up of a crashed run) can find exactly its own things and
 * nothing of anybody else's: pools `drover-<name>-n<i>`, bridges `drv-<name>-<i>`,
 * run directory `/run/drover/<name>`, cgroup parents `drover-<name>-n<i>`.
 */

export const CLUSTER_NAME = /^[a-z][a-z0-9]{0,5}$/;
export const MAX_NODES = 9;
export const DEFAULT_ROOT_PARENT = '/var/lib/drover/clusters';
/** Sockets and exec roots stay short: unix socket paths are limited to 107 bytes. */
export const RUN_PARENT = '/run/drover';
export const PLUGIN_SOCKET_DIR = '/run/docker/plugins';

export function validateClusterName(name: string): void {
  if (!CLUSTER_NAME.test(name)) {
    throw new DroverError('DROVER_CLUSTER_NAME_INVALID', `cluster name '${name}' is not valid: 1 to 6 lowercase letters and digits, starting with a letter (demo, t1, lab2)`, {
      detail: { name },
    });
  }
}

export function validateNodeCount(nodes: number): void {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) {
    throw new DroverError('DROVER_CLUSTER_NODES_INVALID', `a local cluster has 1 to ${MAX_NODES} nodes, not ${nodes}`, {
      detail: { nodes },
    });
  }
}

/** Control services of a local cluster: 1 (the file store), or 3 or 5 on as many etcd members (a majority survives one or two losses). */
export function validateControls(controls: number, isolated: boolean): void {
  if (![1, 3, 5].includes(controls)) {
    throw new DroverError('DROVER_CLUSTER_CONTROLS_INVALID', `--control: a local cluster has 1, 3 or 5 control services, not ${controls}`, { detail: { controls } });
  }
  if (controls > 1 && isolated) {
    throw new DroverError('DROVER_CLUSTER_CONTROLS_INVALID', '--control: several control services are not supported with isolated nodes (--isolate)', { detail: { controls } });
  }
}

export function validateSubnet(subnet: number): void {
  if (!Number.isInteger(subnet) || subnet < 0 || subnet > 255) {
    throw new DroverError('DROVER_CLUSTER_SUBNET_INVALID', `subnet must be an integer 0..255, not ${subnet}`, {
      detail: { subnet },
    });
  }
}

/** The root is removed whole on teardown: it must be an absolute path at least two levels deep. */
export function validateRoot(root: string): void {
  if (!isAbsolute(root) || normalize(root) !== root.replace(/\/+$/, '') || root.split('/').filter(Boolean).length < 2) {
    throw new DroverError('DROVER_CLUSTER_ROOT_INVALID', `cluster root '${root}' must be a normalised absolute path at least two levels deep`, {
      detail: { root },
    });
  }
}

export function defaultRoot(name: string): string {
  return join(DEFAULT_ROOT_PARENT, name);
}

export function clusterStateFile(root: string): string {
  return join(root, 'cluster.json');
}

export function runDir(name: string): string {
  return join(RUN_PARENT, name);
}

/** The layout of the cluster-wide files. */
export function clusterPaths(root: string) {
  return {
    state: clusterStateFile(root),
    sshDir: join(root, 'ssh'),
    agentKey: join(root, 'ssh', 'agent_ed25519'),
    caDir: join(root, 'ca'),
    caCert: join(root, 'ca', 'ca.crt'),
    caKey: join(root, 'ca', 'ca.key'),
  };
}

export function poolName(cluster: string, index: number): string {
  return `drover-${cluster}-n${index}`;
}

/** Linux interface names hold 15 bytes: 'drv-' + 6 + '-' + 1 = 12. */
export function bridgeName(cluster: string, index: number): string {
  return `drv-${cluster}-${index}`;
}

export function pluginName(cluster: string, index: number): string {
  return cluster === 'demo' ? `drover-n${index}` : `drover-${cluster}-n${index}`;
}

export function nodeAddress(subnet: number, index: number): string {
  return `127.0.${subnet}.${10 + index}`;
}

/**
 * The /24 behind node i's docker bridge: 10.(230+i).<subnet>.0/24. Distinct for every
 * (subnet, node), and away from docker0's 172.17.0.0/16.
 */
export function bridgeSubnet(subnet: number, index: number): { network: string; gateway: string; cidr: string } {
  const prefix = `10.${230 + index}.${subnet}`;
  return { network: `${prefix}.0/24`, gateway: `${prefix}.1`, cidr: `${prefix}.1/24` };
}

/**
 * Node i's service subnet (docs/DESIGN.md §21): 10.(240+i).<subnet>.0/24, where its proxy
 * serves the applications reached by name. Distinct for every (subnet, node) while the nodes
 * share one network namespace, and away from the bridges' 10.(230+i).
 */
export function serviceSubnet(subnet: number, index: number): string {
  return `10.${240 + index}.${subnet}.0/24`;
}

/** All the paths of node i. */
export function nodePaths(cluster: string, root: string, index: number) {
  const stateDir = join(root, `n${index}`);
  const run = join(runDir(cluster), `n${index}`);
  return {
    stateDir,
    uuidFile: join(stateDir, 'uuid'),
    poolFile: join(stateDir, 'pool.img'),
    poolMountpoint: join(stateDir, 'zfs'),
    dockerDataRoot: join(stateDir, 'docker'),
    dockerConfig: join(stateDir, 'dockerd.json'),
    dockerKey: join(stateDir, 'dockerd-key.json'),
    dockerLog: join(stateDir, 'dockerd.log'),
    dockerPidFile: join(run, 'dockerd.pid'),
    dockerExecRoot: join(run, 'exec'),
    dockerSocket: join(run, 'docker.sock'),
    sshDir: join(stateDir, 'sshd'),
    sshConfig: join(stateDir, 'sshd', 'sshd_config'),
    sshHostKey: join(stateDir, 'sshd', 'ssh_host_ed25519_key'),
    sshAuthorizedKeys: join(stateDir, 'sshd', 'authorized_keys'),
    sshLog: join(stateDir, 'sshd', 'sshd.log'),
    sshPidFile: join(run, 'sshd.pid'),
    runDir: run,
    cgroupParent: `drover-${cluster}-n${index}`,
  };
}

export type NodePaths = ReturnType<typeof nodePaths>;

/** Recognises a pool of this cluster in `zpool list` output. */
export function isClusterPool(cluster: string, pool: string): boolean {
  return new RegExp(`^drover-${cluster}-n[1-9]$`).test(pool);
}

export function isClusterBridge(cluster: string, link: string): boolean {
  return new RegExp(`^drv-${cluster}-[1-9]$`).test(link);
}

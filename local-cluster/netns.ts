import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '#common/log.ts';
import { checkNoClash, listLinks } from './bridge.ts';
import { PLUGIN_SOCKET_DIR, runDir } from './layout.ts';
import { mountsUnder } from './leftovers.ts';
import { run } from './run.ts';

/**
 * An isolated local cluster (`isolate: true`, docs/DESIGN.md §20): every node in its own
 * network namespace and its own mount namespace, so the nodes fail like separate hosts.
 *
 *   root namespace: veth dvb-<c> 10.229.<s>.1/24 (the control service listens here)
 *     └─► netns drover-<c>-hub: bridge br0 ◄── up0 (dvb-<c>'s peer)
 *                                 ├─ dvh-<c>-1 ──► netns drover-<c>-n1: eth0 10.229.<s>.11/24, lo
 *                                 └─ dvh-<c>-2 ──► netns drover-<c>-n2: eth0 10.229.<s>.12/24, lo
 *   mount namespace of node i (a slave of the root's: zfs-fuse's mounts show up in it):
 *     /run/docker/plugins  ← bind of /run/drover/<c>/n<i>/plugins (only its own plugin's socket)
 *
 * Every process of node i (dockerd, sshd, agent, proxy, plugin) is started through
 * `nsenter --net=… --mount=… --`. The cluster root is a shared bind mount of itself, so the
 * datasets zfs-fuse (one daemon, root namespace) mounts under it later propagate to the nodes.
 * The bridge sits in a namespace of its own, not in the root one: with br_netfilter loaded
 * (Docker loads it) bridged packets cross the namespace's iptables FORWARD chain, whose policy
 * Docker sets to DROP in the root namespace; the hub's chain is empty. The root namespace
 * reaches the nodes over its own veth, as a host on the same switch.
 * A partition takes the node's veth (its port on the hub's bridge) down: its processes keep running, every packet to or
 * from it is lost (nothing is refused: connections hang, as with a cut cable).
 */

export function netnsName(cluster: string, index: number): string {
  return `drover-${cluster}-n${index}`;
}

/** The root namespace's veth onto the hub ('dvb-' + 6 = 10 bytes; interface names hold 15). */
export function clusterBridgeName(cluster: string): string {
  return `dvb-${cluster}`;
}

/** The namespace holding the cluster's bridge `br0`. */
export function hubName(cluster: string): string {
  return `drover-${cluster}-hub`;
}

const HUB_BRIDGE = 'br0';
const HUB_UPLINK = 'up0';

/** The hub end of node i's veth (its port on br0); the node's end is `eth0` in its namespace. */
export function hostVethName(cluster: string, index: number): string {
  return `dvh-${cluster}-${index}`;
}

export function isolatedNodeAddress(subnet: number, index: number): string {
  return `10.229.${subnet}.${10 + index}`;
}

/** The cluster bridge's network and its address in the root namespace (the control service's). */
export function isolatedNetwork(subnet: number): { network: string; gateway: string; cidr: string } {
  return { network: `10.229.${subnet}.0/24`, gateway: `10.229.${subnet}.1`, cidr: `10.229.${subnet}.1/24` };
}

/** Directory of the persistent mount-namespace files (a private bind mount, as `ip netns` does for /run/netns). */
export function mountNsDir(cluster: string): string {
  return join(runDir(cluster), 'ns');
}

export function mountNsFile(cluster: string, index: number): string {
  return join(mountNsDir(cluster), `n${index}.mnt`);
}

/** What node i's /run/docker/plugins is, seen from the root namespace. */
export function nodePluginDir(cluster: string, index: number): string {
  return join(runDir(cluster), `n${index}`, 'plugins');
}

/** Where node i's plugin socket is seen from the root namespace. */
export function pluginSocketDir(cluster: string, index: number, isolated: boolean): string {
  return isolated ? nodePluginDir(cluster, index) : PLUGIN_SOCKET_DIR;
}

/** The command prefix that runs a program as a process of node i. */
export function nodeExec(cluster: string, index: number): string[] {
  return ['nsenter', `--net=/run/netns/${netnsName(cluster, index)}`, `--mount=${mountNsFile(cluster, index)}`, '--'];
}

const T = { timeoutMs: 15_000 };

export async function listNetns(): Promise<string[]> {
  const { stdout } = await run('ip', ['-j', 'netns', 'list'], T);
  return (JSON.parse(stdout || '[]') as Array<{ name: string }>).map((n) => n.name);
}

export function isClusterNetns(cluster: string, name: string): boolean {
  return name === hubName(cluster) || new RegExp(`^drover-${cluster}-n[1-9]$`).test(name);
}

export function isClusterNetLink(cluster: string, link: string): boolean {
  return link === clusterBridgeName(cluster) || new RegExp(`^dvh-${cluster}-[1-9]$`).test(link);
}

async function isMountPoint(path: string): Promise<boolean> {
  return (await mountsUnder([path])).includes(path);
}

/**
 * The cluster-wide pieces: the cluster root as a shared bind mount (so later zfs-fuse
 * mounts under it reach the nodes' mount namespaces), the private directory of the mount
 * namespace files, and the bridge. Idempotent.
 */
export async function ensureClusterNet(cluster: string, root: string, subnet: number): Promise<void> {
  await mkdir(root, { recursive: true });
  if (!(await isMountPoint(root))) {
    await run('mount', ['--bind', root, root], T);
    await run('mount', ['--make-shared', root], T);
  }
  const nsDir = mountNsDir(cluster);
  await mkdir(nsDir, { recursive: true });
  if (!(await isMountPoint(nsDir))) {
    await run('mount', ['--bind', nsDir, nsDir], T);
    await run('mount', ['--make-private', nsDir], T);
  }
  const hub = hubName(cluster);
  const uplink = clusterBridgeName(cluster);
  const net = isolatedNetwork(subnet);
  if (!(await listNetns()).includes(hub)) await run('ip', ['netns', 'add', hub], T);
  if (!(await listLinks(hub)).includes(HUB_BRIDGE)) await run('ip', ['-n', hub, 'link', 'add', HUB_BRIDGE, 'type', 'bridge'], T);
  if (!(await listLinks()).includes(uplink)) {
    await checkNoClash(uplink, net.network);
    await run('ip', ['-n', hub, 'link', 'del', HUB_UPLINK], { ...T, reject: false });
    await run('ip', ['link', 'add', uplink, 'type', 'veth', 'peer', 'name', HUB_UPLINK, 'netns', hub], T);
    await run('ip', ['addr', 'add', net.cidr, 'dev', uplink], T);
  }
  await run('ip', ['-n', hub, 'link', 'set', HUB_UPLINK, 'master', HUB_BRIDGE], T);
  for (const link of ['lo', HUB_BRIDGE, HUB_UPLINK]) await run('ip', ['-n', hub, 'link', 'set', link, 'up'], T);
  await run('ip', ['link', 'set', uplink, 'up'], T);
}

/**
 * Node i's namespaces: the network namespace with lo and eth0 (its address), the veth's
 * other end on the cluster bridge and up (which also heals a partition), and the mount
 * namespace with /run/docker/plugins bound to the node's own directory. Idempotent: what
 * exists is kept (a running node's processes stay in their namespaces).
 */
export async function ensureNodeNet(cluster: string, subnet: number, index: number): Promise<void> {
  const ns = netnsName(cluster, index);
  const veth = hostVethName(cluster, index);
  if (!(await listNetns()).includes(ns)) await run('ip', ['netns', 'add', ns], T);
  const hub = hubName(cluster);
  if (!(await listLinks(hub)).includes(veth)) {
    await run('ip', ['-n', ns, 'link', 'del', 'eth0'], { ...T, reject: false });
    await run('ip', ['-n', hub, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns], T);
    await run('ip', ['-n', hub, 'link', 'set', veth, 'master', HUB_BRIDGE], T);
    await run('ip', ['-n', ns, 'addr', 'add', `${isolatedNodeAddress(subnet, index)}/24`, 'dev', 'eth0'], T);
  }
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'], T);
  await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up'], T);
  await run('ip', ['-n', hub, 'link', 'set', veth, 'up'], T);

  const file = mountNsFile(cluster, index);
  const plugins = nodePluginDir(cluster, index);
  await mkdir(plugins, { recursive: true });
  await mkdir(PLUGIN_SOCKET_DIR, { recursive: true });
  if (!(await isMountPoint(file))) {
    await writeFile(file, '');
    await run('unshare', [`--mount=${file}`, '--propagation', 'slave', 'true'], T);
    await run('nsenter', [`--mount=${file}`, '--', 'mount', '--bind', plugins, PLUGIN_SOCKET_DIR], T);
  }
}

/** Cuts node i off (its veth down); its processes keep running. */
export async function partitionNet(cluster: string, index: number): Promise<void> {
  await run('ip', ['-n', hubName(cluster), 'link', 'set', hostVethName(cluster, index), 'down'], T);
}

export async function healNet(cluster: string, index: number): Promise<void> {
  await run('ip', ['-n', hubName(cluster), 'link', 'set', hostVethName(cluster, index), 'up'], T);
}

/** True when node i's veth is down (partitioned). */
export async function isPartitioned(cluster: string, index: number): Promise<boolean> {
  const { stdout, exitCode } = await run('ip', ['-n', hubName(cluster), '-j', 'link', 'show', 'dev', hostVethName(cluster, index)], { ...T, reject: false });
  if (exitCode !== 0) return false;
  const [link] = JSON.parse(stdout || '[]') as Array<{ flags?: string[] }>;
  return link !== undefined && !(link.flags ?? []).includes('UP');
}

/** Pids of every process in node i's network namespace. */
export async function netnsPids(cluster: string, index: number): Promise<number[]> {
  const ns = netnsName(cluster, index);
  if (!(await listNetns()).includes(ns)) return [];
  const { stdout } = await run('ip', ['netns', 'pids', ns], { ...T, reject: false });
  return stdout.split('\n').filter((line) => /^\d+$/.test(line.trim())).map(Number);
}

/**
 * Removes node i's namespaces (once its processes are gone): the mount namespace file, the
 * network namespace (its veth goes with it) and the plugin directory. Idempotent.
 */
export async function removeNodeNet(cluster: string, index: number, log: Logger): Promise<void> {
  const file = mountNsFile(cluster, index);
  if (await isMountPoint(file)) await run('umount', [file], { ...T, reject: false });
  await rm(file, { force: true });
  const ns = netnsName(cluster, index);
  if ((await listNetns()).includes(ns)) {
    await run('ip', ['netns', 'del', ns], T);
    log.debug({ netns: ns }, 'network namespace removed');
  }
  // The node's veth went with its namespace; a half-made one may be left in the hub.
  if ((await listNetns()).includes(hubName(cluster)) && (await listLinks(hubName(cluster))).includes(hostVethName(cluster, index))) {
    await run('ip', ['-n', hubName(cluster), 'link', 'del', hostVethName(cluster, index)], { ...T, reject: false });
  }
  await rm(nodePluginDir(cluster, index), { recursive: true, force: true });
}

/** Removes the cluster-wide pieces: the hub (bridge and uplink), the namespace-file directory's mount, the root's bind mount. */
export async function removeClusterNet(cluster: string, root: string): Promise<void> {
  if ((await listNetns()).includes(hubName(cluster))) await run('ip', ['netns', 'del', hubName(cluster)], T);
  // The uplink goes with the hub, but the kernel frees a namespace asynchronously: it may
  // still be listed, and gone by the time it is deleted.
  if ((await listLinks()).includes(clusterBridgeName(cluster))) await run('ip', ['link', 'del', clusterBridgeName(cluster)], { ...T, reject: false });
  const nsDir = mountNsDir(cluster);
  for (const point of await mountsUnder([nsDir])) await run('umount', ['-l', point], { ...T, reject: false });
  // The root may have been bound more than once by a crashed run: unbind until it is not a mount point.
  for (let i = 0; i < 5 && (await isMountPoint(root)); i++) await run('umount', [root], { ...T, reject: false });
  if (await isMountPoint(root)) await run('umount', ['-l', root], { ...T, reject: false });
}

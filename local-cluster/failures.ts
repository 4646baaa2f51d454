import { DroverError } from '#common/errors.ts';
import { silentLogger, type Logger } from '#common/log.ts';
import { systemClock } from '#common/clock.ts';
import { cgroupPids } from './leftovers.ts';
import { nodePaths } from './layout.ts';
import { healNet, netnsPids, partitionNet } from './netns.ts';
import { descendantsOf, ownedPid, processesMentioning } from './processes.ts';
import { servicesStatus } from './services.ts';
import type { LocalCluster, LocalNode } from './types.ts';

/**
 * Failures a test or the demo inflicts on a node of a local cluster (docs/DESIGN.md §20):
 * `killNode` (the host dies: every process of the node, SIGKILL), `partitionNode` (the
 * host is cut off: its processes keep running, nothing reaches it or leaves it — an
 * isolated cluster only) and `healNode`. `clusterUp` repairs a killed node (it starts
 * again what is dead, on the same data) and heals a partitioned one.
 */

/** Node `which` ('n2' or '2') of the cluster. @throws DROVER_CLUSTER_NODE_UNKNOWN */
export function nodeOf(cluster: LocalCluster, which: string): LocalNode {
  const index = /^n?([1-9])$/.exec(which)?.[1];
  const node = cluster.nodes.find((n) => String(n.index) === index);
  if (node === undefined) {
    throw new DroverError('DROVER_CLUSTER_NODE_UNKNOWN', `node: '${which}' is not a node of the local cluster '${cluster.name}' (its nodes: ${cluster.nodes.map((n) => n.name).join(', ')})`, {
      detail: { node: which, cluster: cluster.name },
    });
  }
  return node;
}

function requireIsolated(cluster: LocalCluster, verb: string): void {
  if (cluster.isolated !== true) {
    throw new DroverError(
      'DROVER_CLUSTER_NOT_ISOLATED',
      `cannot ${verb}: the local cluster '${cluster.name}' shares one network namespace; bring it up with isolated nodes (drover cluster down --name ${cluster.name}; drover cluster up --name ${cluster.name} --isolate)`,
      { detail: { cluster: cluster.name } },
    );
  }
}

/** Every process that belongs to node `node` now: drover's, dockerd's tree, sshd's, its containers', its namespace's. */
async function nodeProcesses(cluster: LocalCluster, node: LocalNode): Promise<Set<number>> {
  const paths = nodePaths(cluster.name, cluster.root, node.index);
  const pids = new Set<number>();
  const add = (pid: number | null): void => {
    if (pid === null) return;
    pids.add(pid);
    for (const child of descendantsOf(pid)) pids.add(child);
  };
  for (const s of servicesStatus(cluster)) if (s.node === node.index) add(s.pid);
  add(ownedPid(paths.dockerPidFile, paths.dockerDataRoot));
  add(ownedPid(paths.sshPidFile, paths.sshConfig));
  // containerd and the shims (they name the node's run directory), the containers (its cgroup).
  for (const pid of processesMentioning([`${paths.stateDir}/`, `${paths.runDir}/`])) add(pid);
  for (const pid of await cgroupPids(paths.cgroupParent)) add(pid);
  if (cluster.isolated === true) for (const pid of await netnsPids(cluster.name, node.index)) add(pid);
  pids.delete(process.pid);
  return pids;
}

/**
 * The node dies as a host would: agent, proxy, plugin, dockerd with containerd, the shims
 * and every container process, sshd — all SIGKILL at once, nothing gets to clean up (the
 * plugin's socket stays, dead). Its pool, files and (isolated) namespaces stay: `clusterUp`
 * brings it back on the same data. Resolves with the time of the first SIGKILL
 * (`performance.now()` and wall clock) and how many processes were killed.
 */
export async function killNode(cluster: LocalCluster, which: string, log: Logger = silentLogger()): Promise<{ at: number; wall: number; killed: number }> {
  const node = nodeOf(cluster, which);
  let victims = await nodeProcesses(cluster, node);
  const at = { at: performance.now(), wall: Date.now() };
  let killed = 0;
  // A second sweep catches what forked while the first one was being collected.
  for (let sweep = 0; sweep < 3 && victims.size > 0; sweep++) {
    for (const pid of victims) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        // gone already
      }
    }
    await systemClock.sleep(200);
    victims = await nodeProcesses(cluster, node);
  }
  log.info({ node: node.name, killed }, 'node killed');
  return { ...at, killed };
}

/**
 * Cuts node `which` off from the other nodes, the control service and every client in the
 * root namespace (its veth goes down; packets are lost, not refused). Its processes keep
 * running. @throws DROVER_CLUSTER_NOT_ISOLATED, DROVER_CLUSTER_NODE_UNKNOWN
 */
export async function partitionNode(cluster: LocalCluster, which: string): Promise<{ at: number; wall: number }> {
  requireIsolated(cluster, 'partition a node');
  const node = nodeOf(cluster, which);
  await partitionNet(cluster.name, node.index);
  return { at: performance.now(), wall: Date.now() };
}

/** Ends the partition of node `which`, or of every node when it is omitted. */
export async function healNode(cluster: LocalCluster, which?: string): Promise<LocalNode[]> {
  requireIsolated(cluster, 'heal a partition');
  const nodes = which === undefined ? cluster.nodes : [nodeOf(cluster, which)];
  for (const node of nodes) await healNet(cluster.name, node.index);
  return nodes;
}

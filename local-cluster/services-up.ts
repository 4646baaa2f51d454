import { silentLogger } from '#common/log.ts';
import { clusterDown, clusterUp, readCluster } from './cluster.ts';
import { loadImages } from './images.ts';
import { listPools } from './pool.ts';
import { canConnect, pingDocker } from './readiness.ts';
import { startServices } from './services.ts';
import type { LocalCluster, LocalClusterOptions } from './types.ts';

export interface ClusterWithServices {
  cluster: LocalCluster;
  controlUrl: string;
  /** True when a running cluster of that name and size was kept (only missing processes started). */
  reused: boolean;
}

/**
 * `drover cluster up`: the local cluster and drover's processes on it. Idempotent: a
 * cluster of that name and size whose nodes all answer is kept (its data too), its
 * images loaded, and only processes that are not running are started; anything else of
 * that name (a crashed run, another size) is cleaned first by `clusterUp`. When the
 * processes of a new cluster fail to start, the cluster is taken down again.
 */
export async function clusterUpWithServices(options: LocalClusterOptions): Promise<ClusterWithServices> {
  const log = options.log ?? silentLogger();
  const existing = await readCluster(options.name, options.root).catch(() => null);
  if (existing !== null && existing.nodes.length === options.nodes && (await nodesAnswer(existing))) {
    for (const node of existing.nodes) if (node.dockerHost !== null) await loadImages(node.dockerHost, options.images ?? ['busybox'], log);
    return { cluster: existing, controlUrl: await startServices(existing, { log }), reused: true };
  }
  const cluster = await clusterUp(options);
  try {
    return { cluster, controlUrl: await startServices(cluster, { log }), reused: false };
  } catch (err) {
    log.error({ err }, 'drover services failed to start, taking the cluster down');
    await clusterDown(cluster.name, cluster.root, log).catch((downErr: unknown) => log.error({ err: downErr }, 'cluster teardown failed'));
    throw err;
  }
}

async function nodesAnswer(cluster: LocalCluster): Promise<boolean> {
  const pools = await listPools().catch(() => [] as string[]);
  for (const node of cluster.nodes) {
    if (!pools.includes(node.pool)) return false;
    if (node.dockerSocket !== null && !(await pingDocker(node.dockerSocket))) return false;
    if (node.ssh !== null && !(await canConnect(node.ssh.host, node.ssh.port))) return false;
  }
  return true;
}

import { silentLogger } from '#common/log.ts';
import { clusterDown, clusterUp, readCluster } from './cluster.ts';
import { startServices } from './services.ts';
import { controlUrls } from './services-render.ts';
import type { LocalCluster, LocalClusterOptions } from './types.ts';

export interface ClusterWithServices {
  cluster: LocalCluster;
  controlUrl: string;
  /** Every control service's URL (one, unless `controls`), the first being `controlUrl`. */
  controlUrls: string[];
  /** True when the cluster existed already (it was repaired and kept, data and all). */
  reused: boolean;
}

/**
 * `drover cluster up`: the local cluster and drover's processes on it. Idempotent and
 * never destructive: an existing cluster of that name is repaired by `clusterUp` (a dead
 * dockerd or sshd started again, pools, node ids and keys kept; another size refused) and
 * only processes that are not running are started. Only a cluster this call created is
 * taken down again when its processes fail to start.
 * @throws DROVER_CLUSTER_MISMATCH, DROVER_CLUSTER_DAEMON_FAILED, and what clusterUp throws
 */
export async function clusterUpWithServices(options: LocalClusterOptions): Promise<ClusterWithServices> {
  const log = options.log ?? silentLogger();
  const existed = (await readCluster(options.name, options.root)) !== null;
  const cluster = await clusterUp(options);
  try {
    return { cluster, controlUrl: await startServices(cluster, { log }), controlUrls: controlUrls(cluster), reused: existed };
  } catch (err) {
    if (existed) throw err;
    log.error({ err }, 'drover services failed to start, taking the new cluster down');
    await clusterDown(cluster.name, cluster.root, log).catch((downErr: unknown) => log.error({ err: downErr }, 'cluster teardown failed'));
    throw err;
  }
}

/**
 * The local cluster (docs/DESIGN.md §10): one machine playing a whole drover cluster, for the
 * tests and the demo. Start reading at cluster.ts.
 */
export { claimedSubnets, clusterDown, clusterUp, readCluster } from './cluster.ts';
export { healNode, killNode, nodeOf, partitionNode } from './failures.ts';
export { isPartitioned, netnsName, nodeExec } from './netns.ts';
export { imageArchive, imageTag, ensureImageArchive } from './images.ts';
export type { LocalCluster, LocalClusterOptions, LocalImage, LocalNode, LocalNodeSsh } from './types.ts';
export { etcdHealth, knownNodes, pluginSocket, servicesReport, servicesStatus, startServices, stopServices } from './services.ts';
export { controlUrl, controlUrls, etcdEndpoints, metricsAddress, servicesDir } from './services-render.ts';
export { cliEnv, controlClient, controlFiles, ensureClusterCertificates, operatorFiles, operatorTls, nodeFiles, OPERATOR, scraperFiles, SCRAPER } from './certs.ts';
export { prometheusPaths, prometheusUrl, renderPrometheusConfig, startPrometheus, stopPrometheus } from './prometheus.ts';
export { clusterUpWithServices } from './services-up.ts';

/**
 * The local cluster's certificates (docs/DESIGN.md §23), from its CA in `<root>/ca`
 * (common/cluster-ca.ts, the same directory layout as `drover ca`): the control service's
 * (its address, 127.0.0.1 and localhost), one per node (CN = the node's name, used by its
 * agent, proxy and volume plugin; its address as a subject alternative name, for the /metrics
 * its processes serve over TLS), the operator's (`operator`, a user) that the CLI, the tests
 * and the benchmarks use, and Prometheus' (`prometheus`, a scraper: /metrics only). Issued
 * once, kept across `cluster up` repairs.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ApiClient, type ApiClientOptions } from '#common/api-client.ts';
import { ensureCa, ensureIssued, issue, issuedPaths, caPaths } from '#common/cluster-ca.ts';
import type { PemPaths } from '#common/certificates.ts';
import { readTlsIdentity, type TlsFiles, type TlsIdentity } from '#common/tls-client.ts';
import { controlHosts, controlUrls } from './services-render.ts';
import type { LocalCluster, LocalNode } from './types.ts';

/** The user certificate's name in every local cluster. */
export const OPERATOR = 'operator';
/** The scraper certificate's name (`cluster up --metrics`). */
export const SCRAPER = 'prometheus';

export function caDirOf(cluster: Pick<LocalCluster, 'ca'>): string {
  return dirname(cluster.ca.certPath);
}

/** The three files a client of `role`/`name` presents: the CA, its certificate, its key. */
function filesOf(cluster: Pick<LocalCluster, 'ca'>, paths: PemPaths): TlsFiles {
  return { ca: cluster.ca.certPath, cert: paths.certPath, key: paths.keyPath };
}

export function controlFiles(cluster: Pick<LocalCluster, 'ca'>): TlsFiles & { revoked: string } {
  return { ...filesOf(cluster, issuedPaths(caDirOf(cluster), 'control', 'control')), revoked: caPaths(caDirOf(cluster)).revoked };
}

export function nodeFiles(cluster: Pick<LocalCluster, 'ca'>, node: Pick<LocalNode, 'name'>): TlsFiles {
  return filesOf(cluster, issuedPaths(caDirOf(cluster), 'node', node.name));
}

export function operatorFiles(cluster: Pick<LocalCluster, 'ca'>): TlsFiles {
  return filesOf(cluster, issuedPaths(caDirOf(cluster), 'user', OPERATOR));
}

/** Prometheus' certificate: it may scrape every process's /metrics, and call no API route. */
export function scraperFiles(cluster: Pick<LocalCluster, 'ca'>): TlsFiles {
  return filesOf(cluster, issuedPaths(caDirOf(cluster), 'metrics', SCRAPER));
}

/** Issues whichever of the cluster's certificates is missing. Idempotent. */
export async function ensureClusterCertificates(cluster: LocalCluster): Promise<void> {
  const dir = caDirOf(cluster);
  await ensureCa(dir, `drover ${cluster.name} cluster CA`);
  // One certificate for every control service of the cluster (docs/DESIGN.md §31): all their addresses.
  const control = { role: 'control' as const, name: 'control', ipAddresses: [...new Set([...controlHosts(cluster), '127.0.0.1'])], dnsNames: ['localhost'] };
  const controlPaths = await ensureIssued(dir, control);
  const controlCert = new X509Certificate(await readFile(controlPaths.certPath, 'utf8'));
  if (control.ipAddresses.some((ip) => controlCert.checkIP(ip) === undefined)) await issue(dir, control);
  for (const node of cluster.nodes) {
    const paths = await ensureIssued(dir, { role: 'node', name: node.name, ipAddresses: [node.address] });
    // A node certificate of a cluster made before its address was in it: Prometheus could not check its /metrics.
    const text = await readFile(paths.certPath, 'utf8');
    if (new X509Certificate(text).checkIP(node.address) === undefined) await issue(dir, { role: 'node', name: node.name, ipAddresses: [node.address] });
  }
  await ensureIssued(dir, { role: 'user', name: OPERATOR });
  await ensureIssued(dir, { role: 'metrics', name: SCRAPER });
}

/** The operator's identity (PEM) for the cluster's control service. */
export function operatorTls(cluster: Pick<LocalCluster, 'ca'>): TlsIdentity {
  return readTlsIdentity(operatorFiles(cluster));
}

/** An API client of the cluster's control services (every one, failing over between them), as the operator. */
export function controlClient(cluster: LocalCluster, options: Omit<ApiClientOptions, 'baseUrl' | 'tls'> = {}): ApiClient {
  return new ApiClient({ ...options, baseUrl: controlUrls(cluster), tls: operatorTls(cluster) });
}

/** The environment that points `drover` (the CLI) at the cluster as the operator. */
export function cliEnv(cluster: LocalCluster): Record<string, string> {
  const files = operatorFiles(cluster);
  return { DROVER_CONTROL: controlUrls(cluster).join(','), DROVER_CA: files.ca, DROVER_CERT: files.cert, DROVER_KEY: files.key };
}

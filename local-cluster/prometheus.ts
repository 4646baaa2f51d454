/**
 * `drover cluster up --metrics`: one Prometheus (Debian's `prometheus` package) scraping every
 * drover process of the local cluster, with drover's example alert rules loaded
 * (docs/DESIGN.md §25). Its configuration, data, pid file and log live under
 * `<root>/services/prometheus*`, so `drover cluster down` finds it (by pid file, or by that
 * path on its command line after a crash) and removes its data with the cluster.
 */
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { silentLogger, type Logger } from '#common/log.ts';
import { ownedPid, spawnDaemon, terminate } from './processes.ts';
import { waitReady } from './readiness.ts';
import { scraperFiles } from './certs.ts';
import { controlAddress, metricsAddress, servicesDir } from './services-render.ts';
import type { LocalCluster } from './types.ts';

export const PROMETHEUS_BINARY = '/usr/bin/prometheus';
export const PROMETHEUS_PORT = 9090;
/** The example alert rules shipped with drover, loaded into the cluster's Prometheus. */
export const ALERT_RULES = resolve(import.meta.dirname, '..', 'docs', 'alerts', 'drover.rules.yml');
/** Fast enough that a test sees a move's series within seconds. */
const SCRAPE_INTERVAL = '2s';

export function prometheusPaths(root: string) {
  const dir = join(servicesDir(root), 'prometheus');
  return {
    dir,
    config: join(dir, 'prometheus.yml'),
    rules: join(dir, 'drover.rules.yml'),
    data: join(dir, 'data'),
    pidFile: join(servicesDir(root), 'prometheus.pid'),
    logFile: join(servicesDir(root), 'prometheus.log'),
  };
}

/** Where the cluster's Prometheus listens: beside the control service, on port 9090. */
export function prometheusUrl(cluster: Pick<LocalCluster, 'name' | 'nodes'>): string {
  return `http://${controlAddress(cluster).host}:${PROMETHEUS_PORT}`;
}

/**
 * prometheus.yml of the cluster: one job per program (`drover-control`, `drover-agent`,
 * `drover-proxy`, `drover-plugin`), each node's processes at the node's address with a
 * `node` label; every scrape over mutual TLS with the cluster's scraper certificate
 * (`drover-metrics`), checking each process's certificate against the cluster CA and the
 * address scraped (docs/DESIGN.md §25). Pure.
 */
export function renderPrometheusConfig(cluster: LocalCluster): string {
  const files = scraperFiles(cluster);
  const tls = { scheme: 'https', tls_config: { ca_file: files.ca, cert_file: files.cert, key_file: files.key, min_version: 'TLS13' } };
  const perNode = (kind: 'agent' | 'proxy' | 'plugin') => ({
    job_name: `drover-${kind}`,
    ...tls,
    static_configs: cluster.nodes.map((node) => ({ targets: [metricsAddress(cluster, kind, node)], labels: { node: node.name } })),
  });
  const config = {
    global: { scrape_interval: SCRAPE_INTERVAL, evaluation_interval: '5s', external_labels: { cluster: cluster.name } },
    rule_files: [prometheusPaths(cluster.root).rules],
    scrape_configs: [{ job_name: 'drover-control', ...tls, static_configs: [{ targets: [metricsAddress(cluster, 'control', null)] }] }, perNode('agent'), perNode('proxy'), perNode('plugin')],
  };
  return `# the local cluster '${cluster.name}' (written by drover cluster up --metrics)\n${stringify(config)}`;
}

/** Starts the cluster's Prometheus unless it runs; resolves with its URL once it is ready. */
export async function startPrometheus(cluster: LocalCluster, log: Logger = silentLogger()): Promise<string> {
  const paths = prometheusPaths(cluster.root);
  const url = prometheusUrl(cluster);
  if (ownedPid(paths.pidFile, servicesDir(cluster.root) + '/') !== null) return url;
  await mkdir(paths.data, { recursive: true });
  await copyFile(ALERT_RULES, paths.rules);
  await writeFile(paths.config, renderPrometheusConfig(cluster));
  const listen = url.slice('http://'.length);
  const pid = spawnDaemon(PROMETHEUS_BINARY, [`--config.file=${paths.config}`, `--storage.tsdb.path=${paths.data}`, `--web.listen-address=${listen}`, '--storage.tsdb.retention.time=2d'], paths.logFile);
  await writeFile(paths.pidFile, `${pid}\n`);
  log.info({ pid, url }, 'prometheus started');
  await waitReady('prometheus', pid, async () => (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) }).catch(() => null))?.ok === true, paths.logFile, 60_000);
  return url;
}

/** Stops the cluster's Prometheus (if it runs) and removes its data. Idempotent. */
export async function stopPrometheus(root: string, log: Logger = silentLogger()): Promise<void> {
  const paths = prometheusPaths(root);
  const pid = ownedPid(paths.pidFile, servicesDir(root) + '/');
  if (pid !== null && !(await terminate(pid, 15_000))) log.warn({ pid }, 'prometheus did not exit');
  await rm(paths.pidFile, { force: true });
  await rm(paths.dir, { recursive: true, force: true });
}

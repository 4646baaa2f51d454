import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { afterEach, expect, it } from 'vitest';
import { ensureClusterCertificates, prometheusPaths, renderPrometheusConfig, scraperFiles, type LocalCluster } from '../../local-cluster/index.ts';
import { describeWith } from '../support/require.ts';

// docs/DESIGN.md §25: the example alert rules drover ships, and the Prometheus configuration
// `drover cluster up --metrics` renders, as Debian's promtool reads them.
const RULES = resolve(import.meta.dirname, '..', '..', 'docs', 'alerts', 'drover.rules.yml');
let dir: string | null = null;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = null;
});

function cluster(root: string): LocalCluster {
  const node = (index: number) => ({
    index,
    name: `n${index}`,
    uuid: `6cb3c9c7-c26e-49f5-b41b-692e3e7d1f0${index}`,
    address: `127.0.4.${10 + index}`,
    pool: `drover-t4-n${index}`,
    stateDir: join(root, `n${index}`),
    dockerSocket: null,
    dockerHost: null,
    ssh: null,
    pluginName: `drover-t4-n${index}`,
  });
  return { name: 't4', root, nodes: [node(1), node(2)], sshClientKey: { privateKeyPath: join(root, 'key'), publicKey: 'ssh-ed25519 AAAA' }, ca: { certPath: join(root, 'ca', 'ca.crt'), keyPath: join(root, 'ca', 'ca.key') } };
}

describeWith(['prometheus'], "drover's alert rules and the local cluster's Prometheus configuration", () => {
  it('ships alert rules promtool accepts: lag over 3 intervals, replication stalled, node down, process down, migration failed', async () => {
    const check = await execa('promtool', ['check', 'rules', RULES], { reject: false });
    expect(check.stderr).toBe('');
    expect(check.stdout).toContain('SUCCESS: 5 rules found');
    const doc = parse(await readFile(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
    expect(doc.groups[0]!.rules.map((r) => r.alert)).toEqual(['DroverReplicationLagHigh', 'DroverReplicationStalled', 'DroverNodeDown', 'DroverProcessDown', 'DroverMigrationFailed']);
  });

  it('renders a configuration promtool accepts, scraping the control service and each node\'s agent, proxy and plugin at the node\'s address over mutual TLS', async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-prom-'));
    const c = cluster(dir);
    await ensureClusterCertificates(c);
    const paths = prometheusPaths(dir);
    await mkdir(paths.dir, { recursive: true });
    await copyFile(RULES, paths.rules);
    const text = renderPrometheusConfig(c);
    await writeFile(paths.config, text);
    const check = await execa('promtool', ['check', 'config', paths.config], { reject: false });
    expect(check.exitCode, check.stderr).toBe(0);
    const config = parse(text) as { scrape_configs: Array<{ job_name: string; scheme: string; tls_config: unknown; static_configs: Array<{ targets: string[]; labels?: Record<string, string> }> }> };
    const scraper = scraperFiles(c);
    for (const job of config.scrape_configs) expect(job).toMatchObject({ scheme: 'https', tls_config: { ca_file: scraper.ca, cert_file: scraper.cert, key_file: scraper.key } });
    expect(config.scrape_configs.map((j) => [j.job_name, j.static_configs.map((s) => `${s.targets.join(',')}${s.labels ? ` ${s.labels.node}` : ''}`)])).toEqual([
      ['drover-control', ['127.0.4.11:9523']],
      ['drover-agent', ['127.0.4.11:9524 n1', '127.0.4.12:9524 n2']],
      ['drover-proxy', ['127.0.4.11:9525 n1', '127.0.4.12:9525 n2']],
      ['drover-plugin', ['127.0.4.11:9526 n1', '127.0.4.12:9526 n2']],
    ]);
  });
});

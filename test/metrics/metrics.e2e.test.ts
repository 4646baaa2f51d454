import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { beforeAll, expect, it } from 'vitest';
import { isTerminal } from '#common/migration-protocol.ts';
import { readTlsIdentity, tlsFetch } from '#common/tls-client.ts';
import { metricsAddress, nodeFiles, operatorTls, prometheusPaths, prometheusUrl, servicesDir } from '../../local-cluster/index.ts';
import { isAlive, readPidFile } from '../../local-cluster/processes.ts';
import { useTestCluster } from '../support/cluster.ts';
import { LOCAL_CLUSTER, describeWith } from '../support/require.ts';
import { until } from '../migration/stack.ts';
import { ReplicationWorld, type RedisApp } from '../replication/world.ts';

// docs/DESIGN.md §25 end to end: `drover cluster up --metrics` starts Debian's Prometheus
// scraping every process of a 2-node local cluster; Redis replicated to node 2 every 2 s
// moves there; Prometheus's own HTTP API then answers the cutover pause histogram and the
// replication lag series, and the move's id is in the records of the control service, both
// agents and a proxy. `drover cluster down` stops Prometheus and removes its data.
const LONG = 300_000;
const REPO = resolve(import.meta.dirname, '..', '..');

interface PromSeries {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(url: string, promql: string): Promise<PromSeries[]> {
  const answer = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await answer.json()) as { status: string; data: { result: PromSeries[] } };
  if (body.status !== 'success') throw new Error(`prometheus: ${JSON.stringify(body)}`);
  return body.data.result;
}

function drover(args: string[]) {
  return execa('node', ['bin/drover.js', ...args], { cwd: REPO, reject: false, timeout: 240_000, env: { DROVER_LOG_LEVEL: 'warn' } });
}

describeWith([...LOCAL_CLUSTER, 'prometheus'], 'Prometheus metrics and correlated logs of a local cluster', () => {
  const cluster = useTestCluster({ nodes: 2, images: ['busybox', 'redis'], poolSizeMiB: 1024 });
  let world: ReplicationWorld;
  let app: RedisApp;
  let prometheus: string;
  let migrationId: string;

  beforeAll(async () => {
    world = await ReplicationWorld.start(cluster());
    const up = await drover(['cluster', 'up', '--name', cluster().name, '--metrics']);
    expect(up.stderr).toBe('');
    expect(up.exitCode).toBe(0);
    prometheus = prometheusUrl(cluster());
    expect(up.stdout).toContain(`prometheus ${prometheus}`);
    app = await world.deployRedis('kv', 16600, 1, { replicas: 1, intervalS: 2 });
  }, LONG);

  it('scrapes every drover process of the cluster: control, and each node\'s agent, proxy and plugin', async () => {
    const up = await until('every target scraped', async () => {
      const series = await query(prometheus, 'up{job=~"drover-.*"}');
      return series.length === 7 && series.every((s) => s.value[1] === '1') && series;
    }, 60_000, 500);
    expect(up.map((s) => `${s.metric.job} ${s.metric.node ?? ''}`.trim()).sort()).toEqual(
      ['drover-agent n1', 'drover-agent n2', 'drover-control', 'drover-plugin n1', 'drover-plugin n2', 'drover-proxy n1', 'drover-proxy n2'],
    );
    // Behind the API's mutual TLS (docs/DESIGN.md §23): Prometheus scrapes https with its
    // scraper certificate; plain HTTP gets nothing, the operator's certificate may scrape, a node's may not.
    const targets = (await (await fetch(`${prometheus}/api/v1/targets`)).json()) as { data: { activeTargets: Array<{ scrapeUrl: string; labels: { job: string } }> } };
    const scraped = targets.data.activeTargets.filter((t) => t.labels.job.startsWith('drover-')).map((t) => t.scrapeUrl);
    expect(scraped.length).toBe(7);
    expect(scraped.filter((url) => !url.startsWith('https://'))).toEqual([]);
    const agentMetrics = metricsAddress(cluster(), 'agent', cluster().nodes[0]!);
    expect(await fetch(`http://${agentMetrics}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.status, () => 'refused')).not.toBe(200);
    const get = (identity: Parameters<typeof tlsFetch>[0]) => tlsFetch(identity)(`https://${agentMetrics}/metrics`, { method: 'GET', headers: {}, body: null, signal: AbortSignal.timeout(10_000) });
    const asOperator = await get(operatorTls(cluster()));
    expect(asOperator.status).toBe(200);
    expect(await asOperator.text()).toContain('drover_agent_pass_duration_seconds');
    expect((await get(readTlsIdentity(nodeFiles(cluster(), cluster().nodes[1]!)))).status).toBe(403);
  }, LONG);

  it('answers a replication lag series for the dataset and its replica, then the cutover pause of a move', async () => {
    const lag = await until('a replication lag series', async () => {
      const series = await query(prometheus, `drover_replication_lag_seconds{dataset="${app.datasetId}"}`);
      return series.length === 1 && series;
    }, 180_000, 1000);
    expect(lag[0]!.metric).toMatchObject({ job: 'drover-agent', node: 'n1', replica: world.node(2).uuid });
    expect(Number(lag[0]!.value[1])).toBeLessThan(60);

    await until('n2 ok and recent', async () => {
      const r = await world.replica(app, 2);
      return r?.state === 'ok' && (r.lag_seconds ?? Infinity) <= 6;
    }, 120_000);
    const answer = await world.api.moveApplication(app.name, world.node(2).uuid);
    migrationId = answer.migration!.id;
    const done = await until('the move finished', async () => {
      const m = await world.api.migration(migrationId);
      return isTerminal(m.phase) && m;
    }, 240_000, 250);
    expect(done).toMatchObject({ phase: 'done', error: null });

    const pause = await until('the cutover pause in Prometheus', async () => {
      const series = await query(prometheus, 'drover_agent_cutover_pause_seconds_count');
      return series.some((s) => Number(s.value[1]) >= 1) && series;
    }, 60_000, 500);
    expect(pause.find((s) => Number(s.value[1]) >= 1)!.metric).toMatchObject({ job: 'drover-agent', node: 'n1' });
    const buckets = await query(prometheus, 'drover_agent_cutover_pause_seconds_bucket{node="n1",le="+Inf"}');
    expect(Number(buckets[0]!.value[1])).toBe(1);
    // The answers as Prometheus gave them, for a reader (DROVER_TEST_ARTIFACTS=<dir>).
    const artifacts = process.env.DROVER_TEST_ARTIFACTS;
    if (artifacts) {
      await mkdir(artifacts, { recursive: true });
      const answers = {
        lagBeforeTheMove: lag,
        lagAfter: await query(prometheus, `drover_replication_lag_seconds{dataset="${app.datasetId}"}`),
        pauseSum: await query(prometheus, 'drover_agent_cutover_pause_seconds_sum'),
        pauseBuckets: await query(prometheus, 'drover_agent_cutover_pause_seconds_bucket{node="n1"}'),
        preCopy: await query(prometheus, 'drover_agent_migration_phase_duration_seconds_sum'),
        held: await query(prometheus, 'drover_proxy_held_duration_seconds_sum'),
        migration: done,
      };
      await writeFile(join(artifacts, 'prometheus-answers.json'), JSON.stringify(answers, null, 2));
    }
    const phases = await until('the move\'s phases counted', async () => {
      const series = await query(prometheus, 'drover_control_migration_phases_total{phase="done"}');
      return series.length === 1 && Number(series[0]!.value[1]) >= 1 && series;
    }, 30_000, 500);
    expect(phases[0]!.metric.job).toBe('drover-control');
  }, LONG);

  it('carries the move\'s id in the records of the control service, both agents and a proxy', async () => {
    expect(migrationId).toBeDefined();
    const dir = servicesDir(cluster().root);
    const mentions = async (file: string) => (await readFile(join(dir, file), 'utf8')).split('\n').filter((l) => l.includes(`"corr":"${migrationId}"`)).map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(await mentions('control.log')).toEqual(expect.arrayContaining(['migration entered a phase', 'request answered']));
    expect(await mentions('n1-agent.log')).toEqual(expect.arrayContaining(['migration job started', 'snapshot sent', 'migration handed off']));
    expect(await mentions('n2-agent.log')).toEqual(expect.arrayContaining(['change applied']));
    const proxies = [...(await mentions('n1-proxy.log')), ...(await mentions('n2-proxy.log'))];
    expect(proxies).toEqual(expect.arrayContaining(['route hold started', 'route hold ended']));
  });

  it('stops Prometheus and removes its data with `drover cluster down`', async () => {
    const paths = prometheusPaths(cluster().root);
    const pid = readPidFile(paths.pidFile);
    expect(pid).not.toBeNull();
    const down = await drover(['cluster', 'down', '--name', cluster().name]);
    expect(down.exitCode).toBe(0);
    expect(isAlive(pid!)).toBe(false);
    expect(existsSync(paths.data)).toBe(false);
  }, LONG);
});

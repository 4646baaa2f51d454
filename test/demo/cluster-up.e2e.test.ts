import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tmpdir } from 'node:os';
import { controlClient, readCluster, servicesStatus, type LocalCluster } from '../../local-cluster/index.ts';
import { describeWith, LOCAL_CLUSTER } from '../support/require.ts';
import { leaseSubnet } from '../support/cluster.ts';

/**
 * `drover cluster up|status|down` as an operator runs them (the real bin/drover.js), on a
 * leased test subnet and name so it runs beside a live demo cluster: every process comes
 * up, every node is known, and `down` leaves nothing — no process, plugin socket, pool,
 * bridge or directory.
 */
const repo = join(import.meta.dirname, '../..');
const CONFIG = join(tmpdir(), `drover-cluster-up-${process.pid}.yml`);

function drover(...args: string[]) {
  // The CLI's contexts go to a file of the test's, not the operator's ~/.config/drover.
  return execa('node', [join(repo, 'bin/drover.js'), ...args], { cwd: repo, reject: false, timeout: 540_000, env: { DROVER_LOG_LEVEL: 'warn', DROVER_CONFIG: CONFIG } });
}

function processesNaming(path: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(path)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describeWith(LOCAL_CLUSTER, 'drover cluster up, status and down', () => {
  let lease: Awaited<ReturnType<typeof leaseSubnet>>;
  let name = '';
  let cluster: LocalCluster | null = null;

  beforeAll(async () => {
    lease = await leaseSubnet();
    name = `t${lease.subnet}`;
  });

  afterAll(async () => {
    try {
      if (name) await drover('cluster', 'down', '--name', name);
    } finally {
      lease?.release();
    }
  });

  it('brings up two nodes with a control service, and per node an agent, a proxy and a volume plugin that the control service knows', async () => {
    const up = await drover('cluster', 'up', '--name', name, '--subnet', String(lease.subnet), '--nodes', '2');
    expect(up.stderr).toBe('');
    expect(up.exitCode).toBe(0);
    cluster = await readCluster(name);
    expect(cluster?.nodes).toHaveLength(2);
    const status = servicesStatus(cluster!);
    expect(status.map((s) => s.name).sort()).toEqual(['control', 'n1-agent', 'n1-plugin', 'n1-proxy', 'n2-agent', 'n2-plugin', 'n2-proxy']);
    expect(status.filter((s) => s.pid === null)).toEqual([]);
    // Over mutual TLS, as the cluster's operator.
    const nodes = await controlClient(cluster!).nodes();
    expect(nodes.map((n) => [n.host, n.state]).sort()).toEqual([
      [`127.0.${lease.subnet}.11`, 'known'],
      [`127.0.${lease.subnet}.12`, 'known'],
    ]);
    for (const node of cluster!.nodes) expect(existsSync(`/run/docker/plugins/${node.pluginName}.sock`)).toBe(true);
    expect(up.stdout).toContain(`drover talks to this cluster with --context ${name}`);
    expect(readFileSync(CONFIG, 'utf8')).toContain(`server: https://127.0.${lease.subnet}.11:4523`);
    const cli = await drover('status', '--context', name);
    expect(cli.exitCode, cli.stderr).toBe(0);
  });

  it('starts no second copy of anything when brought up again, and says all is well in status', async () => {
    const before = servicesStatus(cluster!).map((s) => s.pid);
    const again = await drover('cluster', 'up', '--name', name, '--subnet', String(lease.subnet), '--nodes', '2');
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain('already up');
    expect(servicesStatus(cluster!).map((s) => s.pid)).toEqual(before);
    const status = await drover('cluster', 'status', '--name', name);
    expect(status.exitCode).toBe(0);
    expect(status.stdout).toMatch(/n1\s+known\s+pid \d+\s+pid \d+/);
  });

  it('restarts a process that died when brought up again, and status says so before', async () => {
    const proxy = servicesStatus(cluster!).find((s) => s.name === 'n2-proxy')!;
    process.kill(proxy.pid!, 'SIGKILL');
    await expect.poll(() => servicesStatus(cluster!).find((s) => s.name === 'n2-proxy')!.pid, { timeout: 10_000 }).toBeNull();
    const status = await drover('cluster', 'status', '--name', name);
    expect(status.exitCode).toBe(1);
    expect(status.stdout).toContain('DOWN');
    const up = await drover('cluster', 'up', '--name', name, '--subnet', String(lease.subnet), '--nodes', '2');
    expect(up.exitCode).toBe(0);
    expect(servicesStatus(cluster!).filter((s) => s.pid === null)).toEqual([]);
  });

  it('leaves nothing behind when taken down: no process, plugin socket, pool, bridge or directory', async () => {
    const down = await drover('cluster', 'down', '--name', name);
    expect(down.exitCode).toBe(0);
    expect(processesNaming(cluster!.root + '/')).toEqual([]);
    for (const node of cluster!.nodes) expect(existsSync(`/run/docker/plugins/${node.pluginName}.sock`)).toBe(false);
    const pools = (await execa('zpool', ['list', '-H', '-o', 'name'])).stdout.split('\n');
    expect(pools.filter((p) => p.startsWith(`drover-${name}-`))).toEqual([]);
    const links = (await execa('ip', ['-o', 'link', 'show'])).stdout;
    expect(links).not.toContain(`drv-${name}-`);
    expect(existsSync(cluster!.root)).toBe(false);
    expect(existsSync(`/run/drover/${name}`)).toBe(false);
  });
});

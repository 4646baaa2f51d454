import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { clusterDown, clusterUp, clusterUpWithServices, readCluster, servicesStatus, type LocalCluster } from '../../local-cluster/index.ts';
import { canConnect, pingDocker } from '../../local-cluster/readiness.ts';
import { leaseSubnet } from '../support/cluster.ts';
import { describeWith, LOCAL_CLUSTER } from '../support/require.ts';

/**
 * `drover cluster up` never destroys what it was asked to keep: on a cluster whose node
 * lost its dockerd and its agent, `up` starts them again and keeps the pools (and the data
 * in them), the node ids and the keys; asked for another size it refuses and keeps it all.
 * Only `down` removes anything.
 */
const repo = join(import.meta.dirname, '../..');

async function pools(name: string): Promise<string[]> {
  const { stdout } = await execa('zpool', ['list', '-H', '-o', 'name'], { timeout: 30_000 });
  return stdout.split('\n').filter((pool) => pool.startsWith(`drover-${name}-`)).sort();
}

describeWith(LOCAL_CLUSTER, 'drover cluster up on a damaged cluster', () => {
  let lease: Awaited<ReturnType<typeof leaseSubnet>>;
  let name = '';
  let first: LocalCluster;
  let file = '';

  beforeAll(async () => {
    lease = await leaseSubnet();
    name = `t${lease.subnet}`;
    await clusterDown(name); // a crashed run's leftover of this leased name
    first = (await clusterUpWithServices({ name, nodes: 2, subnet: lease.subnet })).cluster;
    const n2 = first.nodes[1]!;
    await execa('zfs', ['create', `${n2.pool}/drover/keep`], { timeout: 60_000 });
    const { stdout: mountpoint } = await execa('zfs', ['get', '-H', '-o', 'value', 'mountpoint', `${n2.pool}/drover/keep`], { timeout: 30_000 });
    file = join(mountpoint, 'data.txt');
    await writeFile(file, 'written before the crash\n');
    expect(await readFile(file, 'utf8')).toBe('written before the crash\n');
  });

  afterAll(async () => {
    try {
      if (name) await clusterDown(name);
    } finally {
      lease?.release();
    }
  });

  it('starts a killed dockerd, agent, plugin and sshd again and keeps the pools, the data, the node ids and the keys, even when its output is cut short', async () => {
    const n2 = first.nodes[1]!;
    const agentKey = await readFile(first.sshClientKey.privateKeyPath, 'utf8');
    const ca = await readFile(first.ca.certPath, 'utf8');
    const poolsBefore = await pools(name);
    const dockerd = Number((await readFile(`/run/drover/${name}/n2/dockerd.pid`, 'utf8')).trim());
    const sshd = Number((await readFile(`/run/drover/${name}/n1/sshd.pid`, 'utf8')).trim());
    const services = servicesStatus(first);
    for (const pid of [dockerd, sshd, ...['n2-agent', 'n2-plugin'].map((s) => services.find((x) => x.name === s)!.pid!)]) process.kill(pid, 'SIGKILL');
    await expect.poll(() => pingDocker(n2.dockerSocket!), { timeout: 10_000 }).toBe(false);

    // As an operator would, reading only the first line: the command must not die of EPIPE.
    const up = await execa(
      'bash',
      ['-c', `node bin/drover.js cluster up --name ${name} --subnet ${lease.subnet} --nodes 2 | head -1; exit \${PIPESTATUS[0]}`],
      { cwd: repo, reject: false, timeout: 300_000, env: { DROVER_LOG_LEVEL: 'warn' } },
    );
    expect(up.stderr).not.toMatch(/EPIPE/);
    expect(up.exitCode, `drover cluster up failed:\n${up.stderr}`).toBe(0);
    expect(up.stdout).toBe(`cluster ${name} was already up; started only what was not running`);

    expect(await pingDocker(n2.dockerSocket!)).toBe(true);
    expect(await canConnect(first.nodes[0]!.address, 22)).toBe(true);
    const second = (await readCluster(name))!;
    expect(second.nodes.map((n) => n.uuid)).toEqual(first.nodes.map((n) => n.uuid));
    expect(second.nodes.map((n) => n.ssh?.hostKeyFingerprint)).toEqual(first.nodes.map((n) => n.ssh?.hostKeyFingerprint));
    expect(await readFile(second.sshClientKey.privateKeyPath, 'utf8')).toBe(agentKey);
    expect(await readFile(second.ca.certPath, 'utf8')).toBe(ca);
    expect(await pools(name)).toEqual(poolsBefore);
    expect(await readFile(file, 'utf8')).toBe('written before the crash\n');
    expect(servicesStatus(second).filter((s) => s.pid === null)).toEqual([]);
    // The restarted dockerd is usable, not just answering pings.
    const { stdout } = await execa('docker', ['-H', n2.dockerHost!, 'run', '--rm', 'drover/busybox:latest', 'echo', 'ok'], { timeout: 60_000 });
    expect(stdout).toBe('ok');
  });

  it('refuses to bring the cluster up with another node count, and keeps it as it was', async () => {
    const poolsBefore = await pools(name);
    await expect(clusterUp({ name, nodes: 3, subnet: lease.subnet })).rejects.toMatchObject({ code: 'DROVER_CLUSTER_MISMATCH' });
    const cli = await execa('node', [join(repo, 'bin/drover.js'), 'cluster', 'up', '--name', name, '--nodes', '1'], { cwd: repo, reject: false, timeout: 120_000 });
    expect(cli.exitCode).toBe(1);
    expect(cli.stderr).toContain('exists with 2 nodes, not 1');
    expect(cli.stderr).toContain(`drover cluster down --name ${name}`);
    expect(await pools(name)).toEqual(poolsBefore);
    expect((await readCluster(name))!.nodes.map((n) => n.uuid)).toEqual(first.nodes.map((n) => n.uuid));
    expect(await readFile(file, 'utf8')).toBe('written before the crash\n');
  });

  it('imports a pool that zfs-fuse no longer lists from its file, with its data', async () => {
    const n1 = first.nodes[0]!;
    await execa('zfs', ['create', `${n1.pool}/drover/keep`], { timeout: 60_000 });
    const { stdout: mountpoint } = await execa('zfs', ['get', '-H', '-o', 'value', 'mountpoint', `${n1.pool}/drover/keep`], { timeout: 30_000 });
    await writeFile(join(mountpoint, 'data.txt'), 'on node 1\n');
    await execa('zpool', ['export', n1.pool], { timeout: 120_000 });
    expect(await pools(name)).toEqual([first.nodes[1]!.pool]);

    const repaired = await clusterUp({ name, nodes: 2, subnet: lease.subnet });
    expect(repaired.nodes.map((n) => n.uuid)).toEqual(first.nodes.map((n) => n.uuid));
    expect(await pools(name)).toEqual(first.nodes.map((n) => n.pool).sort());
    expect(await readFile(join(mountpoint, 'data.txt'), 'utf8')).toBe('on node 1\n');
    expect(await readFile(file, 'utf8')).toBe('written before the crash\n');
  });
});

import { access, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { clusterDown, clusterUp } from '../../local-cluster/index.ts';
import { processesMentioning } from '../../local-cluster/processes.ts';
import { leaseSubnet } from '../support/cluster.ts';
import { describeWith, LOCAL_CLUSTER } from '../support/require.ts';

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Everything of cluster `name` still on the machine, described for a readable failure. */
async function traces(name: string, root: string): Promise<string[]> {
  const found: string[] = [];
  const pools = (await execa('zpool', ['list', '-H', '-o', 'name'], { timeout: 30_000 })).stdout.split('\n');
  found.push(...pools.filter((pool) => pool.startsWith(`drover-${name}-`)).map((pool) => `pool ${pool}`));
  const links = JSON.parse((await execa('ip', ['-j', 'link', 'show'], { timeout: 15_000 })).stdout) as Array<{ ifname: string }>;
  found.push(...links.filter((link) => link.ifname.startsWith(`drv-${name}-`)).map((link) => `bridge ${link.ifname}`));
  found.push(...processesMentioning([`${root}/`, `/run/drover/${name}/`]).map((pid) => `process ${pid}`));
  for (const dir of [root, `/run/drover/${name}`]) if (await exists(dir)) found.push(`directory ${dir}`);
  const cgroups = await readdir('/sys/fs/cgroup/pids').catch(() => [] as string[]);
  found.push(...cgroups.filter((cg) => cg.startsWith(`drover-${name}-`)).map((cg) => `cgroup ${cg}`));
  const sockets = await readdir('/run/docker/plugins').catch(() => [] as string[]);
  found.push(...sockets.filter((s) => s.startsWith(`drover-${name}-`)).map((s) => `plugin socket ${s}`));
  return found;
}

describeWith(LOCAL_CLUSTER, 'local cluster teardown', () => {
  let lease: Awaited<ReturnType<typeof leaseSubnet>>;
  let name: string;
  beforeAll(async () => {
    lease = await leaseSubnet();
    name = `t${lease.subnet}`;
  });
  afterAll(async () => {
    try {
      await clusterDown(name);
    } finally {
      lease.release();
    }
  });

  it('brings a 3-node cluster up and down twice, leaving no pool, process, bridge, container or file behind, and keeps other clusters off its subnet', async () => {
    for (let round = 1; round <= 2; round++) {
      const cluster = await clusterUp({ name, nodes: 3, subnet: lease.subnet });
      expect(cluster.nodes.map((node) => node.address)).toEqual([11, 12, 13].map((i) => `127.0.${lease.subnet}.${i}`));
      const n1 = cluster.nodes[0]!;
      await execa('docker', ['-H', n1.dockerHost!, 'run', '-d', '-p', '18081:80', 'drover/busybox:latest', 'httpd', '-f', '-p', '80'], { timeout: 60_000 });
      // A plugin socket the node's volume plugin would have left: teardown removes it.
      await mkdir('/run/docker/plugins', { recursive: true });
      await writeFile(`/run/docker/plugins/${n1.pluginName}.sock`, '');
      expect(await traces(name, cluster.root)).not.toEqual([]);
      if (round === 1) {
        await expect(clusterUp({ name: `u${lease.subnet}`, nodes: 1, subnet: lease.subnet })).rejects.toMatchObject({
          code: 'DROVER_CLUSTER_SUBNET_IN_USE',
        });
      }

      await clusterDown(name);
      expect(await traces(name, cluster.root)).toEqual([]);
    }
  });

  it('cleans up after a crashed run of the same name before starting again', async () => {
    const first = await clusterUp({ name, nodes: 2, subnet: lease.subnet, ssh: true });
    const n2 = first.nodes[1]!;
    await execa('docker', ['-H', n2.dockerHost!, 'run', '-d', '-v', `${n2.stateDir}/zfs/drover:/data`, 'drover/busybox:latest', 'sleep', '600'], { timeout: 60_000 });
    // The crash: daemons killed outright (their containerd, shim and container live on),
    // and the record gone.
    for (const pidFile of [`/run/drover/${name}/n2/dockerd.pid`, `/run/drover/${name}/n1/sshd.pid`]) {
      process.kill(Number((await readFile(pidFile, 'utf8')).trim()), 'SIGKILL');
    }
    await rm(`${first.root}/cluster.json`);

    const second = await clusterUp({ name, nodes: 1, subnet: lease.subnet });
    expect(second.nodes.map((node) => node.name)).toEqual(['n1']);
    const left = await traces(name, second.root);
    expect(left.filter((trace) => /-n2|drv-.*-2|\/n2/.test(trace))).toEqual([]);

    await clusterDown(name);
    expect(await traces(name, second.root)).toEqual([]);
  });
});

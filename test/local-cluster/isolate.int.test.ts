import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  clusterDown,
  clusterUp,
  healNode,
  isPartitioned,
  killNode,
  netnsName,
  nodeExec,
  partitionNode,
  pluginSocket,
  servicesReport,
  servicesStatus,
  startServices,
  type LocalCluster,
} from '../../local-cluster/index.ts';
import { isAlive } from '../../local-cluster/processes.ts';
import { canConnect, pingDocker } from '../../local-cluster/readiness.ts';
import { leaseSubnet } from '../support/cluster.ts';
import { describeWith, LOCAL_CLUSTER } from '../support/require.ts';

/**
 * A local cluster with isolated nodes (docs/DESIGN.md §20): each node in its own network and
 * mount namespace. Its dockerd sees only its own plugin; zfs-fuse's mounts (one daemon, root
 * namespace) reach it; the nodes reach each other's sshd across the hub bridge, and every node
 * reaches the control service; a partition cuts one node off while it keeps running, heal ends
 * it; a killed node loses every process and `up` brings it back; `down` leaves no namespace,
 * link or mount behind.
 */

/** Whether a TCP connection to host:port opens from inside node `index`'s network namespace. */
async function connectsFrom(cluster: LocalCluster, index: number, host: string, port: number): Promise<boolean> {
  const probe = `require('net').connect(${port}, ${JSON.stringify(host)}).on('connect', () => process.exit(0)).on('error', () => process.exit(1)); setTimeout(() => process.exit(2), 2000)`;
  const r = await execa('ip', ['netns', 'exec', netnsName(cluster.name, index), process.execPath, '-e', probe], { reject: false, timeout: 10_000 });
  return r.exitCode === 0;
}

async function nodeLinks(name: string): Promise<string[]> {
  const { stdout } = await execa('ip', ['-j', 'link', 'show'], { timeout: 15_000 });
  return (JSON.parse(stdout) as Array<{ ifname: string }>).map((l) => l.ifname).filter((l) => new RegExp(`^(dvb|dvh|drv)-${name}(-|$)`).test(l));
}

describeWith(LOCAL_CLUSTER, 'a local cluster with isolated nodes', () => {
  let lease: Awaited<ReturnType<typeof leaseSubnet>>;
  let name = '';
  let cluster: LocalCluster;
  let url = '';

  beforeAll(async () => {
    lease = await leaseSubnet();
    name = `t${lease.subnet}`;
    cluster = await clusterUp({ name, nodes: 2, subnet: lease.subnet, isolate: true, poolSizeMiB: 512, fresh: true });
    url = await startServices(cluster);
  }, 300_000);

  afterAll(async () => {
    try {
      if (name) await clusterDown(name);
    } finally {
      lease?.release();
    }
  }, 120_000);

  it("gives each node's dockerd only its own plugin, and mounts zfs-fuse datasets made afterwards into its containers", async () => {
    const [n1, n2] = cluster.nodes as [LocalCluster['nodes'][number], LocalCluster['nodes'][number]];
    expect(url).toBe(`https://10.229.${lease.subnet}.1:4523`);
    expect(existsSync(pluginSocket(cluster, n1))).toBe(true);
    expect(existsSync(join('/run/docker/plugins', `${n1.pluginName}.sock`))).toBe(false);
    const foreign = await execa('docker', ['-H', n1.dockerHost!, 'volume', 'create', '-d', n2.pluginName, 'foreign'], { reject: false, timeout: 60_000 });
    expect(foreign.exitCode).toBe(1);
    expect(foreign.stderr).toContain(`plugin "${n2.pluginName}" not found`);

    await execa('docker', ['-H', n1.dockerHost!, 'volume', 'create', '-d', n1.pluginName, 'own'], { timeout: 60_000 });
    const run = await execa('docker', ['-H', n1.dockerHost!, 'run', '--rm', '-v', 'own:/data', 'drover/busybox:latest', 'sh', '-c', 'echo from-n1 > /data/f && grep " /data " /proc/mounts'], { timeout: 120_000 });
    expect(run.stdout).toContain('fuse.zfs');
    const { stdout } = await execa('zfs', ['list', '-H', '-o', 'mountpoint', '-r', `${n1.pool}/drover`], { timeout: 30_000 });
    const contents = await Promise.all(stdout.split('\n').slice(1).map((dir) => readFile(join(dir, 'f'), 'utf8').catch(() => '')));
    expect(contents).toContain('from-n1\n');
  }, 180_000);

  it("lets the nodes reach each other's sshd and the control service across the bridge, and the agents copy over ssh", async () => {
    const [n1, n2] = cluster.nodes as [LocalCluster['nodes'][number], LocalCluster['nodes'][number]];
    expect(await connectsFrom(cluster, 1, n2.address, 22)).toBe(true);
    expect(await connectsFrom(cluster, 2, `10.229.${lease.subnet}.1`, 4523)).toBe(true);
    const ssh = await execa(
      nodeExec(cluster.name, 1)[0]!,
      [...nodeExec(cluster.name, 1).slice(1), 'ssh', '-i', cluster.sshClientKey.privateKeyPath, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', `root@${n2.address}`, 'ip -br addr show eth0'],
      { timeout: 30_000, reject: false },
    );
    // n2's sshd answered across the bridge, and its forced command (docs/DESIGN.md §24) refused
    // anything but drover's receive: the agents' key runs no shell command there.
    expect(ssh.stderr).toContain('DROVER_SSH_RECEIVE_REFUSED');
    expect(ssh.exitCode).not.toBe(0);
  }, 60_000);

  it('cuts a partitioned node off from the other node, the control service and this machine while its processes run on, and heals it', async () => {
    const [n1, n2] = cluster.nodes as [LocalCluster['nodes'][number], LocalCluster['nodes'][number]];
    await partitionNode(cluster, 'n1');
    try {
      expect(await isPartitioned(cluster.name, 1)).toBe(true);
      expect(await connectsFrom(cluster, 2, n1.address, 22)).toBe(false);
      expect(await connectsFrom(cluster, 1, `10.229.${lease.subnet}.1`, 4523)).toBe(false);
      expect(await canConnect(n1.address, 22, 1_000)).toBe(false);
      expect(await connectsFrom(cluster, 2, `10.229.${lease.subnet}.1`, 4523)).toBe(true);
      expect(servicesStatus(cluster).filter((s) => s.node === 1).every((s) => s.pid !== null && isAlive(s.pid))).toBe(true);
      expect(await pingDocker(n1.dockerSocket!)).toBe(true);
    } finally {
      await healNode(cluster);
    }
    expect(await isPartitioned(cluster.name, 1)).toBe(false);
    await expect.poll(() => connectsFrom(cluster, 2, n1.address, 22), { timeout: 10_000 }).toBe(true);
  }, 60_000);

  it('kills every process of a node at once, and up brings it back on the same data', async () => {
    const n2 = cluster.nodes[1]!;
    const before = servicesStatus(cluster).filter((s) => s.node === 2).map((s) => s.pid!);
    const { killed } = await killNode(cluster, 'n2');
    expect(killed).toBeGreaterThanOrEqual(6);
    expect(before.some((pid) => isAlive(pid))).toBe(false);
    const pids = await execa('ip', ['netns', 'pids', netnsName(cluster.name, 2)], { timeout: 15_000 });
    expect(pids.stdout.trim()).toBe('');
    expect(await pingDocker(n2.dockerSocket!)).toBe(false);

    const repaired = await clusterUp({ name, nodes: 2, poolSizeMiB: 512 });
    expect(repaired.nodes[1]!.uuid).toBe(n2.uuid);
    await startServices(repaired);
    // Its lease may lapse between the old agent's death and the new one's first report: poll.
    await expect.poll(async () => (await servicesReport(repaired)).ok, { timeout: 60_000, interval: 500 }).toBe(true);
  }, 300_000);

  it('leaves no namespace, link, mount or plugin directory behind when it is taken down', async () => {
    await clusterDown(name);
    const { stdout } = await execa('ip', ['netns', 'list'], { timeout: 15_000 });
    expect(stdout.split('\n').filter((ns) => ns.startsWith(`drover-${name}-`))).toEqual([]);
    expect(await nodeLinks(name)).toEqual([]);
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    expect(mounts.split('\n').filter((line) => new RegExp(`/${name}(/| )`).test(line))).toEqual([]);
    expect(existsSync(`/run/drover/${name}`)).toBe(false);
  }, 120_000);
});

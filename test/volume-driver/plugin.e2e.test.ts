/**
 * The volume plugin with drover's real processes on a 2-node local cluster: the control
 * service, an agent per node (ZFS datasets on each node's zfs-fuse pool) and a plugin per
 * node, each behind its node's own dockerd. "docker -H node 2" really is docker on node 2.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemClock } from '#common/clock.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith, LOCAL_CLUSTER } from '../support/require.ts';
import { socketPathFor } from '../../volume-driver/plugin-server.ts';
import { DroverStack } from './stack.ts';

const IMAGE = 'drover/busybox:latest';

interface Dataset {
  dataset_id: string;
  primary: string;
  deleted: boolean;
  metadata: Record<string, string>;
}
interface Lease {
  dataset_id: string;
  node_uuid: string;
}

describeWith(LOCAL_CLUSTER, 'the volume plugin with the control service and agents on a 2-node cluster', () => {
  const cluster = useTestCluster({ nodes: 2, docker: true, ssh: true, images: ['busybox'] });
  let dir: string;
  let stack: DroverStack | null = null;
  const node = (i: 1 | 2) => cluster().nodes[i - 1]!;
  const plugin = (i: 1 | 2) => node(i).pluginName;

  async function docker(i: 1 | 2, ...args: string[]): Promise<string> {
    const result = await execa('docker', ['-H', node(i).dockerHost!, ...args], { timeout: 150_000, reject: false });
    if (result.exitCode !== 0) throw new Error(`docker on node ${i}: ${args.join(' ')}: ${result.stderr.trim()}`);
    return result.stdout.trim();
  }
  async function dockerFails(i: 1 | 2, ...args: string[]): Promise<string> {
    const result = await execa('docker', ['-H', node(i).dockerHost!, ...args], { timeout: 150_000, reject: false });
    if (result.exitCode === 0) throw new Error(`docker on node ${i}: ${args.join(' ')} succeeded but should have failed`);
    return result.stderr.trim();
  }
  async function datasetOf(volume: string): Promise<Dataset> {
    const found = (await stack!.api<Dataset[]>('/v1/configuration/datasets')).filter((d) => !d.deleted && d.metadata.name === volume);
    expect(found).toHaveLength(1);
    return found[0]!;
  }
  /** Who holds the lease of `volume` (node uuids); polls briefly, as Docker unmounts in the background. */
  async function leaseHolders(volume: string, expected: string[]): Promise<void> {
    const { dataset_id } = await datasetOf(volume);
    const read = async () => (await stack!.api<Lease[]>('/v1/configuration/leases')).filter((l) => l.dataset_id === dataset_id).map((l) => l.node_uuid);
    for (let i = 0; i < 50 && JSON.stringify(await read()) !== JSON.stringify(expected); i++) await systemClock.sleep(100);
    const holders = await read();
    if (JSON.stringify(holders) !== JSON.stringify(expected)) {
      // What the plugins and the control service did with this volume: the story a rare
      // failure needs, printed with it (CI keeps no log files).
      const lines: string[] = [];
      for (const file of ['plugin-n1.log', 'plugin-n2.log', 'control.log']) {
        const text = await readFile(join(dir, file), 'utf8').catch(() => '');
        for (const line of text.split('\n')) if (line.includes(dataset_id) || line.includes(`"${volume}"`) || /VolumeDriver\.(Mount|Unmount)|lease/i.test(line)) lines.push(`${file}: ${line.slice(0, 400)}`);
      }
      expect.fail(`lease holders of ${volume} (${dataset_id}): ${JSON.stringify(holders)}, expected ${JSON.stringify(expected)}\n${lines.slice(-80).join('\n')}`);
    }
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-plugin-e2e-'));
    stack = await DroverStack.start(cluster(), dir, { logLevel: 'debug' });
  });

  afterAll(async () => {
    // Containers, then volumes (the plugins answer Remove), then the plugins; the cluster's
    // own afterAll stops the dockerds last.
    try {
      for (const i of [1, 2] as const) {
        const ids = (await docker(i, 'ps', '-aq').catch(() => '')).split('\n').filter(Boolean);
        if (ids.length) await docker(i, 'rm', '-f', ...ids).catch(() => undefined);
        for (const v of (await docker(i, 'volume', 'ls', '-q').catch(() => '')).split('\n').filter(Boolean)) await docker(i, 'volume', 'rm', v).catch(() => undefined);
      }
    } finally {
      await stack?.stop();
      for (const i of [1, 2] as const) expect(existsSync(socketPathFor(plugin(i)))).toBe(false);
      if (dir && process.env.DROVER_KEEP_LOGS === undefined) await rm(dir, { recursive: true, force: true });
    }
  });

  it('creates one dataset for a volume, on the node whose plugin created it, however many nodes create it', async () => {
    await docker(1, 'volume', 'create', '-d', plugin(1), '-o', 'size=256M', 'v1');
    await docker(2, 'volume', 'create', '-d', plugin(2), 'v1');
    expect(await datasetOf('v1')).toMatchObject({ primary: node(1).uuid, maximum_size: 256 * 1024 ** 2 });
    const [inspect] = JSON.parse(await docker(2, 'volume', 'inspect', 'v1'));
    expect(inspect).toMatchObject({ Driver: plugin(2), Scope: 'global', Status: { primary: node(1).uuid, node: node(1).address, local: false } });
  });

  it('keeps a file written on node 1 in the ZFS dataset, and holds the lease only while mounted', async () => {
    await docker(1, 'run', '--rm', '-v', 'v1:/data', IMAGE, 'sh', '-c', 'echo written-on-node-1 > /data/f');
    await leaseHolders('v1', []);
    expect(await docker(1, 'run', '--rm', '-v', 'v1:/data', IMAGE, 'cat', '/data/f')).toBe('written-on-node-1');
    const states = await stack!.api<Array<{ dataset_id: string; primary?: string; path?: string }>>('/v1/state/datasets');
    const { dataset_id } = await datasetOf('v1');
    const state = states.find((s) => s.dataset_id === dataset_id)!;
    expect(state).toMatchObject({ primary: node(1).uuid });
    expect(state.path).toBeTruthy();
  });

  it('moves the data to node 2 when a container there mounts the volume, and reads what node 1 wrote', async () => {
    // Needs the agents' migration support (pre-copy, cutover, handoff). If it is missing,
    // the Mount ends after 90 s with an Err that says where the volume is and what is pending.
    expect(await docker(2, 'run', '--rm', '--volume-driver', plugin(2), '-v', 'v1:/data', IMAGE, 'cat', '/data/f')).toBe('written-on-node-1');
    expect(await datasetOf('v1')).toMatchObject({ primary: node(2).uuid });
    await leaseHolders('v1', []);
  });

  it('copies image files into a new volume at docker create, and keeps it mounted through docker cp', async () => {
    await docker(1, 'volume', 'create', '-d', plugin(1), 'v-cp');
    const id = await docker(1, 'create', '-v', 'v-cp:/etc', IMAGE, 'sleep', '300');
    await leaseHolders('v-cp', []);
    await docker(1, 'start', id);
    await leaseHolders('v-cp', [node(1).uuid]);
    await docker(1, 'cp', `${id}:/etc/passwd`, join(dir, 'passwd'));
    await docker(1, 'cp', join(dir, 'passwd'), `${id}:/etc/passwd-copy`);
    await leaseHolders('v-cp', [node(1).uuid]);
    expect(await docker(1, 'exec', id, 'cat', '/etc/group', '/etc/passwd-copy')).toMatch(/^root:x:0:\nnogroup:x:65534:\nroot:x:0:0:root/);
    await docker(1, 'rm', '-f', id);
    await leaseHolders('v-cp', []);
  });

  it('keeps the lease across a restart of the plugin, and the Unmount after it releases the lease', async () => {
    await docker(1, 'volume', 'create', '-d', plugin(1), 'v-restart');
    const id = await docker(1, 'run', '-d', '-v', 'v-restart:/data', IMAGE, 'sleep', '300');
    await leaseHolders('v-restart', [node(1).uuid]);
    await stack!.stopPlugin(1);
    expect(existsSync(socketPathFor(plugin(1)))).toBe(false);
    await stack!.startPlugin(1);
    await leaseHolders('v-restart', [node(1).uuid]);
    await docker(1, 'stop', '-t', '0', id);
    await leaseHolders('v-restart', []);
    await docker(1, 'rm', id);
  });

  it('refuses docker volume rm on node 2 while a container on node 1 uses the volume, naming node 1, and after it, as node 2 is not where it lives', async () => {
    await docker(1, 'volume', 'create', '-d', plugin(1), 'v-busy');
    await docker(2, 'volume', 'create', '-d', plugin(2), 'v-busy');
    const id = await docker(1, 'run', '-d', '-v', 'v-busy:/data', IMAGE, 'sleep', '300');
    await leaseHolders('v-busy', [node(1).uuid]);
    expect(await dockerFails(2, 'volume', 'rm', 'v-busy')).toContain(
      `volume "v-busy" is in use on node ${node(1).address} (${node(1).uuid.slice(0, 8)}) (it holds the volume's lease); stop the containers using it there first`,
    );
    await docker(1, 'rm', '-f', id);
    await leaseHolders('v-busy', []);
    // Node 2's plugin acts with node 2's certificate: it may delete a dataset on node 2 only
    // (rule dataset-on-itself, docs/DESIGN.md §23), so the volume is removed where it lives.
    expect(await dockerFails(2, 'volume', 'rm', 'v-busy')).toContain('rule dataset-on-itself');
    expect((await datasetOf('v-busy')).deleted).toBe(false);
    await docker(1, 'volume', 'rm', 'v-busy');
    expect((await stack!.api<Dataset[]>('/v1/configuration/datasets')).find((d) => d.metadata.name === 'v-busy')?.deleted).toBe(true);
    // Node 2's Docker then forgets the name: there is no dataset left to delete.
    await docker(2, 'volume', 'rm', 'v-busy');
  });
});

/**
 * The plugin against real dockerds: a 2-node local cluster's (never the host's: a plugin
 * Docker has used stays cached in that dockerd until it restarts). The control service is
 * the in-memory fake, playing the agents with plain directories, so these tests are about
 * what Docker sends and what it makes of the answers; plugin.e2e.test.ts runs the real
 * control service and agents.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { systemClock } from '#common/clock.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith, LOCAL_CLUSTER } from '../support/require.ts';
import { buildApp } from '../../volume-driver/app.ts';
import { VolumeDriver } from '../../volume-driver/driver.ts';
import { FakeControl } from '../../volume-driver/testing/fake-control.ts';
import { MountStore } from '../../volume-driver/mount-store.ts';
import { SocketDockerVolumes } from '../../volume-driver/docker-volumes.ts';
import { LEASE_TTL_SECONDS } from '../../volume-driver/lease-keeper.ts';
import { startPluginServer, socketPathFor, type PluginServer } from '../../volume-driver/plugin-server.ts';

const ME = '11111111-1111-4111-8111-111111111111';
const OTHER = '22222222-2222-4222-8222-222222222222';
const IMAGE = 'drover/busybox:latest';

describeWith(LOCAL_CLUSTER, 'the plugin under a real dockerd', () => {
  const cluster = useTestCluster({ nodes: 2, docker: true, ssh: false, images: ['busybox'] });
  let root: string;
  let control: FakeControl;
  let server: PluginServer | null = null;
  let driver: VolumeDriver;
  let store: MountStore;
  let plugin: string;

  async function run(host: string, args: string[], mustFail = false): Promise<string> {
    const result = await execa('docker', ['-H', host, ...args], { timeout: 120_000, reject: false });
    if (mustFail !== (result.exitCode !== 0)) throw new Error(`docker ${args.join(' ')}: exit ${result.exitCode}: ${result.stderr}`);
    return (mustFail ? result.stderr : result.stdout).trim();
  }
  /** docker on node 1, the node whose plugin runs here. */
  const docker = (...args: string[]): Promise<string> => run(cluster().nodes[0]!.dockerHost!, args);
  const dockerFails = (...args: string[]): Promise<string> => run(cluster().nodes[0]!.dockerHost!, args, true);

  async function startPlugin(): Promise<void> {
    store = await MountStore.open(join(root, 'state'));
    // The counts are checked against node 1's dockerd only when a test calls reconcileMounts
    // (main.ts does it every 10 s); no settle time, the tests say when containers run.
    const docker = new SocketDockerVolumes(cluster().nodes[0]!.dockerSocket!, plugin);
    driver = new VolumeDriver({ control, store, nodeUuid: ME, log: silentLogger(), mountTimeoutMs: 20_000, docker, mountSettleMs: 0 });
    server = await startPluginServer(buildApp({ driver, log: silentLogger() }), socketPathFor(plugin), silentLogger());
  }
  async function stopPlugin(): Promise<void> {
    driver?.stop();
    await server?.close();
    server = null;
  }
  /** Docker unmounts a stopped container's volumes in the background: poll, bounded. */
  async function leasesSoon(volume: string, expected: string[]): Promise<void> {
    for (let i = 0; i < 50 && JSON.stringify(leases(volume)) !== JSON.stringify(expected); i++) await systemClock.sleep(100);
    expect(leases(volume)).toEqual(expected);
  }
  /** Who holds the lease of `volume`: `["1111"]` is this node. */
  const leases = (volume: string): string[] =>
    control.leases.filter((l) => control.datasets.find((d) => d.dataset_id === l.dataset_id)?.metadata.name === volume).map((l) => l.node_uuid.slice(0, 4));

  beforeAll(async () => {
    plugin = cluster().nodes[0]!.pluginName;
    root = await mkdtemp(join(tmpdir(), 'drover-vdt-'));
    control = new FakeControl({
      nodes: [
        { uuid: ME, host: '127.0.0.11' },
        { uuid: OTHER, host: '127.0.0.12' },
      ],
      pathFor: (node, id) => join(root, 'nodes', node, id),
      // The agents' part: the dataset appears on its node, with its data when it moved.
      materialise: (node, id, from) => {
        const to = join(root, 'nodes', node, id);
        if (from && existsSync(join(root, 'nodes', from, id))) cpSync(join(root, 'nodes', from, id), to, { recursive: true });
        else mkdirSync(to, { recursive: true });
      },
    });
    await startPlugin();
  });

  afterAll(async () => {
    // Teardown order matters: containers, volumes, plugin (its socket), then dockerd.
    // Teardown order matters: containers, volumes, the plugin (its socket); then the
    // cluster's afterAll stops dockerd.
    try {
      const ids = (await docker('ps', '-aq')).split('\n').filter(Boolean);
      if (ids.length) await docker('rm', '-f', ...ids);
      for (const v of (await docker('volume', 'ls', '-q')).split('\n').filter(Boolean)) await docker('volume', 'rm', v).catch(() => undefined);
    } finally {
      await stopPlugin();
      if (root) await rm(root, { recursive: true, force: true });
    }
    expect(existsSync(socketPathFor(plugin))).toBe(false);
  });

  it('creates a volume Docker then sees with global scope and where it lives', async () => {
    await docker('volume', 'create', '-d', plugin, '-o', 'size=1G', 'v-create');
    const [inspect] = JSON.parse(await docker('volume', 'inspect', 'v-create'));
    expect(inspect).toMatchObject({ Driver: plugin, Name: 'v-create', Scope: 'global', Status: { local: true, node: '127.0.0.11', maximum_size: 1024 ** 3 } });
    expect(Date.parse(inspect.CreatedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(await docker('volume', 'create', '-d', plugin, 'v-create')).toBe('v-create');
    expect(control.datasets.filter((d) => d.metadata.name === 'v-create')).toHaveLength(1);
  });

  it('keeps what one container wrote for the next, and holds the lease only while mounted', async () => {
    await docker('volume', 'create', '-d', plugin, 'v-data');
    await docker('run', '--rm', '-v', 'v-data:/data', IMAGE, 'sh', '-c', 'echo hello > /data/f');
    await leasesSoon('v-data', []);
    expect(await docker('run', '--rm', '-v', 'v-data:/data', IMAGE, 'cat', '/data/f')).toBe('hello');
  });

  it('mounts and unmounts for the copy of image files at docker create, and copies them in', async () => {
    await docker('volume', 'create', '-d', plugin, 'v-copy');
    // drover/busybox has files in /etc: creating the container copies them into the volume.
    const id = await docker('create', '-v', 'v-copy:/etc', IMAGE, 'cat', '/etc/group');
    await leasesSoon('v-copy', []);
    expect(store.current.volumes['v-copy']).toBeUndefined();
    expect(await docker('start', '-a', id)).toBe('root:x:0:\nnogroup:x:65534:');
    await docker('rm', id);
  });

  it('keeps the volume mounted after docker cp mounts it again under the same ID', async () => {
    await docker('volume', 'create', '-d', plugin, 'v-cp');
    const id = await docker('run', '-d', '-v', 'v-cp:/data', IMAGE, 'sleep', '300');
    writeFileSync(join(root, 'readme'), 'copied in\n');
    await docker('cp', join(root, 'readme'), `${id}:/data/readme`);
    await docker('cp', `${id}:/data/readme`, join(root, 'readme-back'));
    expect(leases('v-cp')).toEqual(['1111']);
    expect(await docker('exec', id, 'ls', '/data')).toBe('readme');
    await docker('rm', '-f', id);
    await leasesSoon('v-cp', []);
  });

  it('remembers a running container across a restart of the plugin, and releases the lease when it stops', async () => {
    await docker('volume', 'create', '-d', plugin, 'v-restart');
    const id = await docker('run', '-d', '-v', 'v-restart:/data', IMAGE, 'sleep', '300');
    await stopPlugin();
    expect(existsSync(socketPathFor(plugin))).toBe(false);
    await startPlugin();
    expect(leases('v-restart')).toEqual(['1111']);
    await docker('stop', '-t', '0', id);
    await leasesSoon('v-restart', []);
    await docker('rm', id);
  });

  it('forgets the mounts of a container that stopped while the plugin was down, against the real dockerd, and releases the lease', async () => {
    await docker('volume', 'create', '-d', plugin, 'v-stale');
    const id = await docker('run', '-d', '-v', 'v-stale:/data', IMAGE, 'sleep', '300');
    const running = await docker('run', '-d', '-v', 'v-kept:/data', '--volume-driver', plugin, IMAGE, 'sleep', '300');
    expect(control.leases.map((l) => l.expires)).toEqual([LEASE_TTL_SECONDS, LEASE_TTL_SECONDS]);
    await stopPlugin();
    // Docker cannot deliver this Unmount (the plugin is gone) and never sends it again.
    await docker('stop', '-t', '0', id);
    await startPlugin();
    expect(store.current.volumes['v-stale']).toBeDefined();
    expect(leases('v-stale')).toEqual(['1111']);
    expect(await driver.reconcileMounts()).toEqual(['v-stale']);
    expect(store.current.volumes['v-stale']).toBeUndefined();
    expect(leases('v-stale')).toEqual([]);
    // The volume of the container still running keeps its count and its lease.
    expect(leases('v-kept')).toEqual(['1111']);
    await docker('rm', id);
    await docker('volume', 'rm', 'v-stale');
    await docker('rm', '-f', running);
    await leasesSoon('v-kept', []);
  });

  it('refuses docker volume rm of a volume used here or on another node, naming who uses it', async () => {
    await docker('volume', 'create', '-d', plugin, 'v-rm');
    const id = await docker('run', '-d', '-v', 'v-rm:/data', IMAGE, 'sleep', '300');
    expect(await dockerFails('volume', 'rm', 'v-rm')).toMatch(/volume is in use/);
    await docker('rm', '-f', id);

    await leasesSoon('v-rm', []);
    const dataset = control.datasets.find((d) => d.metadata.name === 'v-rm')!;
    await control.acquireLease(dataset.dataset_id, OTHER);
    expect(await dockerFails('volume', 'rm', 'v-rm')).toContain(
      'volume "v-rm" is in use on node 127.0.0.12 (22222222) (it holds the volume\'s lease); stop the containers using it there first',
    );
    await control.releaseLease(dataset.dataset_id);
    await docker('volume', 'rm', 'v-rm');
    expect(dataset.deleted).toBe(true);
  });

  it('leaves nothing behind that would stall a dockerd when it stops cleanly', async () => {
    await stopPlugin();
    expect(readdirSync('/run/docker/plugins')).not.toContain(`${plugin}.sock`);
    // A dockerd that has used the plugin keeps it cached until it restarts and retries it
    // ~15 s per call (Docker's behaviour: hence the teardown order). Any other finds nothing.
    // Node 2's dockerd has never used it, and there is no socket for it to find.
    const started = performance.now();
    await run(cluster().nodes[1]!.dockerHost!, ['volume', 'ls']);
    expect(performance.now() - started).toBeLessThan(2_000);
    await startPlugin();
  });
});

import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiClient } from '#common/api-client.ts';
import type { ContainerState } from '#common/api.ts';
import { nodeFlagsOf } from '#common/node-flags.ts';
import { controlFiles, ensureClusterCertificates, nodeFiles, operatorTls } from '../../local-cluster/index.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';

// drover-control and drover-agent as processes, on a 1-node local cluster (its own dockerd
// and zfs-fuse pool): deploy an application with a dataset through the API; crash it, make it
// unhealthy, stop the agent — and watch it all through the API, as an operator would. They
// talk mutual TLS with the cluster CA's certificates (docs/DESIGN.md §23), as in a real cluster.
const root = resolve(import.meta.dirname, '../..');

/** Waits (bounded) until `probe` returns something truthy; returns it. */
async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describeWith(['root', 'dockerd', 'zfs'], 'drover-agent with drover-control on a 1-node local cluster', () => {
  const cluster = useTestCluster({ nodes: 1, docker: true, ssh: false, images: ['busybox'] });
  let dir: string;
  let control: ResultPromise | null = null;
  let agent: ResultPromise | null = null;
  let api: ApiClient;
  let datasetId = '';
  const node = () => cluster().nodes[0]!;
  const docker = (...args: string[]) => execa('docker', ['-H', node().dockerHost!, ...args], { timeout: 60_000 });
  const store = async (): Promise<ContainerState | undefined> => (await api.containerStates()).find((c) => c.name === 'store');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-agent-e2e-'));
    await ensureClusterCertificates(cluster());
    const tls = controlFiles(cluster());
    const tlsFlags = ['--tls-ca', tls.ca, '--tls-cert', tls.cert, '--tls-key', tls.key, '--revoked', tls.revoked];
    control = execa('node', [join(root, 'bin/drover-control.js'), '--listen', '127.0.0.1:0', ...tlsFlags, '--data-dir', join(dir, 'control'), '--node-timeout', '3'], {
      cwd: root,
      reject: false,
      stdout: 'pipe',
      stderr: { file: join(dir, 'control.err') },
    });
    const lines = createInterface({ input: control.stdout! });
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('drover-control did not start within 30 s')), 30_000);
      lines.on('line', (line) => {
        const record = JSON.parse(line) as { msg?: string; address?: string };
        if (record.msg === 'control service started' && record.address) {
          clearTimeout(timer);
          resolve(record.address);
        }
      });
    });
    expect(address).toMatch(/^https:/);
    api = new ApiClient({ baseUrl: address, tls: operatorTls(cluster()) });

    const own = nodeFiles(cluster(), node());
    const config = [
      `control_url: ${address}`,
      `control_tls: { ca_file: ${own.ca}, cert_file: ${own.cert}, key_file: ${own.key} }`,
      `state_dir: ${join(dir, 'agent')}`,
      `node_uuid_file: ${join(node().stateDir, 'uuid')}`,
      `address: ${node().address}`,
      `pool: ${node().pool}`,
      `docker_socket: ${node().dockerSocket}`,
      'transport: tls',
      'tls: { port: 4524 }',
      'labels: { disk: ssd }',
      'poll_interval_ms: 500',
      'stop_timeout_seconds: 1',
    ].join('\n');
    await writeFile(join(dir, 'agent.yml'), config);
    const program = join(root, 'bin/drover-agent.js');
    agent = execa('node', [...nodeFlagsOf(program), program, '--config', join(dir, 'agent.yml')], {
      cwd: root,
      reject: false,
      stdout: { file: join(dir, 'agent.log') },
      stderr: { file: join(dir, 'agent.err') },
    });
  });

  afterAll(async () => {
    for (const p of [agent, control]) {
      if (p && p.exitCode === null) {
        p.kill('SIGKILL');
        await p;
      }
    }
    if (dir && process.env.DROVER_KEEP_LOGS === undefined) await rm(dir, { recursive: true, force: true });
  });

  it('registers the node with the control service, with its address and labels', async () => {
    const found = await until('node registered', async () => (await api.nodes()).find((n) => n.uuid === node().uuid && n.state === 'known'), 30_000);
    expect(found).toMatchObject({ host: node().address, labels: { disk: 'ssd' } });
  });

  it('deploys an application with a dataset: created with its size, mounted, its port published', async () => {
    const dataset = await api.createDataset({ primary: node().uuid, maximum_size: 67108864, metadata: { name: 'store' } });
    datasetId = dataset.dataset_id;
    await api.createContainer({
      name: 'store',
      node_uuid: node().uuid,
      image: 'drover/busybox:latest',
      command_line: ['sh', '-c', 'echo started >> /data/starts; exec httpd -f -p 8080 -h /data'],
      ports: [{ internal: 8080, external: 18080 }],
      volumes: [{ dataset_id: datasetId, mountpoint: '/data' }],
      restart_policy: { name: 'always' },
      health_check: { type: 'exec', command: ['sh', '-c', 'test ! -f /data/sick'], period_seconds: 0.5, timeout_seconds: 2, failure_threshold: 2 },
    });
    const state = await until('store healthy', async () => {
      const s = await store();
      return s?.running && s.health === 'healthy' && s;
    });
    const ds = await until('dataset path', async () => (await api.datasetStates()).find((d) => d.dataset_id === datasetId && d.path));
    expect(ds).toMatchObject({ primary: node().uuid, maximum_size: 67108864 });
    await writeFile(join(ds.path!, 'hello.txt'), 'written on the host\n');
    const { host, host_port } = state.published[0]!;
    expect(host).toBe(node().address);
    expect(await (await fetch(`http://${host}:${host_port}/hello.txt`)).text()).toBe('written on the host\n');
    expect(state.restart_count).toBe(0);
  });

  it('restarts the application when its process is killed, and counts the restart', async () => {
    const { stdout: pid } = await docker('inspect', '--format', '{{.State.Pid}}', 'drover-store');
    process.kill(Number(pid), 'SIGKILL');
    await until('restarted once', async () => {
      const s = await store();
      return s?.restart_count === 1 && s.running && s.health === 'healthy';
    });
    const ds = (await api.datasetStates()).find((d) => d.dataset_id === datasetId)!;
    expect((await readFile(join(ds.path!, 'starts'), 'utf8')).trim().split('\n')).toHaveLength(2);
  });

  it('restarts the application when its health check fails failure_threshold times', async () => {
    const ds = (await api.datasetStates()).find((d) => d.dataset_id === datasetId)!;
    await writeFile(join(ds.path!, 'sick'), 'yes\n');
    await until('restarted for health', async () => ((await store())?.restart_count ?? 0) >= 2);
    await rm(join(ds.path!, 'sick'));
    const s = await until('healthy again', async () => {
      const c = await store();
      return c?.running && c.health === 'healthy' && c;
    });
    expect(s.restart_count).toBeGreaterThanOrEqual(2);
  });

  it('shows the node unknown when its agent stops, and keeps the application in the configuration', async () => {
    agent!.kill('SIGTERM');
    expect((await agent!).exitCode).toBe(0);
    await until('node unknown', async () => (await api.nodes()).find((n) => n.uuid === node().uuid && n.state === 'unknown'), 20_000);
    expect((await api.containers()).containers.map((c) => c.name)).toContain('store');
    expect((await api.datasets()).datasets.find((d) => d.dataset_id === datasetId)?.deleted).toBe(false);
    expect((await api.application('store')).state).toBe('unknown');
    const { stdout } = await docker('inspect', '--format', '{{.State.Running}}', 'drover-store');
    expect(stdout).toBe('true');
  });
});

import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Application, Dataset, Node, type NodeReport } from '#common/model.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';
import { startStubControl, type StubControl } from './stub-control.ts';

// The real drover-agent process on a 1-node local cluster (its own dockerd and zfs-fuse
// pool), fed by a stand-in control channel: deploy an application with a dataset, then
// crash it, make it unhealthy, and stop the agent.
const root = resolve(import.meta.dirname, '../..');

describeWith(['root', 'dockerd', 'zfs'], 'drover-agent process on a 1-node local cluster', () => {
  const cluster = useTestCluster({ nodes: 1, docker: true, ssh: false, images: ['busybox'] });
  const datasetId = randomUUID();
  let control: StubControl;
  let dir: string;
  let agent: ResultPromise | null = null;
  const node = () => cluster().nodes[0]!;
  const docker = (...args: string[]) => execa('docker', ['-H', node().dockerHost!, ...args], { timeout: 60_000 });
  const app = () => container(control.reports.at(-1));
  const container = (r: NodeReport | undefined) => r?.containers.find((c) => c.name === 'store');

  beforeAll(async () => {
    control = await startStubControl(node().uuid);
    dir = await mkdtemp(join(tmpdir(), 'drover-agent-proc-'));
    const config = [
      `control_url: ${control.url}`,
      `state_dir: ${join(dir, 'state')}`,
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
    agent = execa('node', [join(root, 'bin/drover-agent.js'), '--config', join(dir, 'agent.yml')], {
      cwd: root,
      reject: false,
      stdout: { file: join(dir, 'agent.log') },
      stderr: { file: join(dir, 'agent.err') },
      env: { DROVER_LOG_LEVEL: 'debug' },
    });
  });

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGKILL');
      await agent;
    }
    await control?.close();
    if (dir && process.env.DROVER_KEEP_LOGS === undefined) await rm(dir, { recursive: true, force: true });
  });

  it('registers the node with its address, labels and transfer endpoint, and an empty node', async () => {
    const first = await control.waitForReport(() => true, { timeoutMs: 30_000, fromIndex: 0 });
    expect(first).toMatchObject({ uuid: node().uuid, host: node().address, labels: { disk: 'ssd' }, transfer: { tls: { host: node().address, port: 4524 } } });
    expect(first.containers).toEqual([]);
  });

  it('creates the dataset and starts the application with the dataset mounted and its port published', async () => {
    control.publish({
      node: Node.parse({ uuid: node().uuid, host: node().address }),
      nodes: [Node.parse({ uuid: node().uuid, host: node().address })],
      datasets: [Dataset.parse({ dataset_id: datasetId, primary: node().uuid, maximum_size: 67108864 })],
      applications: [
        Application.parse({
          name: 'store',
          node_uuid: node().uuid,
          image: 'drover/busybox:latest',
          command_line: ['sh', '-c', 'echo started >> /data/starts; exec httpd -f -p 8080 -h /data'],
          ports: [{ internal: 8080, external: 18080 }],
          volumes: [{ dataset_id: datasetId, mountpoint: '/data' }],
          restart_policy: { name: 'always' },
          health_check: { type: 'exec', command: ['sh', '-c', 'test ! -f /data/sick'], period_seconds: 0.5, timeout_seconds: 2, failure_threshold: 2 },
        }),
      ],
      leases: [],
      migrations: [],
    });
    const report = await control.waitForReport((r) => container(r)?.health === 'healthy');
    const ds = report.datasets.find((d) => d.dataset_id === datasetId)!;
    expect(ds).toMatchObject({ writable: true, maximum_size: 67108864 });
    expect(ds.path).toBeTruthy();
    await writeFile(join(ds.path!, 'hello.txt'), 'written on the host\n');
    const { host, host_port } = container(report)!.published[0]!;
    expect(host).toBe(node().address);
    expect(await (await fetch(`http://${host}:${host_port}/hello.txt`)).text()).toBe('written on the host\n');
    expect(container(report)).toMatchObject({ running: true, restart_count: 0 });
  });

  it('restarts the application when its process is killed, and counts the restart', async () => {
    const { stdout: pid } = await docker('inspect', '--format', '{{.State.Pid}}', 'drover-store');
    process.kill(Number(pid), 'SIGKILL');
    await control.waitForReport((r) => container(r)?.restart_count === 1 && container(r)?.running === true);
    const path = control.reports.at(-1)!.datasets[0]!.path!;
    expect((await readFile(join(path, 'starts'), 'utf8')).trim().split('\n')).toHaveLength(2);
  });

  it('restarts the application when its health check fails failure_threshold times', async () => {
    const path = control.reports.at(-1)!.datasets[0]!.path!;
    await control.waitForReport((r) => container(r)?.health === 'healthy' && container(r)?.restart_count === 1);
    await writeFile(join(path, 'sick'), 'yes\n');
    await control.waitForReport((r) => (container(r)?.restart_count ?? 0) >= 2);
    await rm(join(path, 'sick'));
    const report = await control.waitForReport((r) => container(r)?.health === 'healthy' && container(r)?.running === true);
    expect(container(report)!.restart_count).toBeGreaterThanOrEqual(2);
  });

  it('stops on SIGTERM without touching the application, and stops reporting', async () => {
    agent!.kill('SIGTERM');
    const result = await agent!;
    expect(result.exitCode).toBe(0);
    const reportsAtExit = control.reports.length;
    await new Promise((r) => setTimeout(r, 1_500));
    expect(control.reports.length).toBe(reportsAtExit);
    const { stdout } = await docker('inspect', '--format', '{{.State.Running}}', 'drover-store');
    expect(stdout).toBe('true');
    expect(control.invalidReports).toEqual([]);
    expect(app()?.running).toBe(true);
  });
});

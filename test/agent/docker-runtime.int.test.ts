import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { Application } from '#common/model.ts';
import { DockerRuntime } from '../../convergence-agent/docker.ts';
import { httpProbe, tcpProbe } from '../../convergence-agent/health/probes.ts';
import { parseServiceSubnet } from '#common/service-subnet.ts';
import { containerSpec } from '../../convergence-agent/plan/container-spec.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';

// The dockerode adapter against one local-cluster node's own dockerd (docs/DESIGN.md §10).
describeWith(['root', 'dockerd', 'zfs'], 'docker adapter on a local-cluster dockerd', () => {
  const cluster = useTestCluster({ nodes: 1, docker: true, ssh: false, images: ['busybox'] });
  let runtime: DockerRuntime;
  let dataDir: string;
  const other = randomUUID();

  const node = () => cluster().nodes[0]!;
  const spec = (name: string, fields: Record<string, unknown> = {}, nodeUuid = node().uuid, mounts = new Map<string, string>()) =>
    containerSpec(Application.parse({ name, image: 'drover/busybox:latest', ...fields }), {
      nodeUuid,
      address: node().address,
      generation: 4,
      mountpoints: mounts,
    });
  const docker = (...args: string[]) => execa('docker', ['-H', node().dockerHost!, ...args], { timeout: 60_000 });

  beforeAll(async () => {
    runtime = new DockerRuntime({ socketPath: node().dockerSocket!, pullTimeoutMs: 5_000 });
    dataDir = join(node().stateDir, 'agent-int-data');
    await mkdir(dataDir, { recursive: true });
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('creates a labelled container with its data bind-mounted and its port published on the node address', async () => {
    await writeFile(join(dataDir, 'index.html'), 'hello from the dataset\n');
    const s = spec(
      'web',
      {
        command_line: ['httpd', '-f', '-p', '8080', '-h', '/data'],
        ports: [{ internal: 8080, external: 18080 }],
        volumes: [{ dataset_id: '00000000-0000-4000-8000-000000000001', mountpoint: '/data' }],
        memory_limit: 64 * 1024 * 1024,
        environment: { GREETING: 'hi' },
      },
      undefined,
      new Map([['00000000-0000-4000-8000-000000000001', dataDir]]),
    );
    await runtime.createAndStart(s);
    const [c] = await runtime.listContainers(node().uuid);
    expect(c).toMatchObject({
      name: 'drover-web',
      running: true,
      status: 'running',
      mountSources: [dataDir],
      labels: { 'drover.node': node().uuid, 'drover.app': 'web', 'drover.generation': '4', 'drover.config-hash': s.configHash },
    });
    expect(c!.published).toHaveLength(1);
    expect(c!.published[0]).toMatchObject({ internal: 8080, host: node().address });
    const { host_port } = c!.published[0]!;
    const res = await fetch(`http://${node().address}:${host_port}/index.html`);
    expect(await res.text()).toBe('hello from the dataset\n');
    expect((await httpProbe(node().address, host_port, '/index.html', 1000)).outcome).toBe('success');
    expect((await tcpProbe(node().address, host_port, 1000)).outcome).toBe('success');
    const { stdout } = await docker('inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}} {{json .Config.Env}}', 'drover-web');
    expect(stdout).toContain(`${64 * 1024 * 1024} no `);
    expect(stdout).toContain('"GREETING=hi"');
  });

  it('publishes exposed and UDP ports on the node address and writes its peers into /etc/hosts (docs/DESIGN.md §21)', async () => {
    const s = containerSpec(
      Application.parse({
        name: 'named',
        image: 'drover/busybox:latest',
        command_line: ['sleep', '600'],
        ports: [{ internal: 53, external: 10053, protocol: 'udp' }],
        expose: [{ internal: 6379 }],
        peers: { named: 1, db: 2 },
      }),
      { nodeUuid: node().uuid, address: node().address, generation: 0, mountpoints: new Map(), serviceSubnet: parseServiceSubnet('10.213.7.0/24')! },
    );
    await runtime.createAndStart(s);
    const c = (await runtime.listContainers(node().uuid)).find((x) => x.name === 'drover-named')!;
    expect(c.published.map((p) => [p.internal, p.protocol ?? 'tcp', p.host])).toEqual([
      [53, 'udp', node().address],
      [6379, 'tcp', node().address],
    ]);
    const { stdout } = await docker('exec', 'drover-named', 'cat', '/etc/hosts');
    expect(stdout).toMatch(/^10\.213\.7\.2\s+db$/m);
    expect(stdout).toMatch(/^10\.213\.7\.1\s+named$/m);
    await runtime.stop(c.id, 0);
    await runtime.remove(c.id);
  });

  it('lists only the containers labelled for the node it is asked about', async () => {
    await runtime.createAndStart(spec('elsewhere', { command_line: ['sleep', '600'] }, other));
    expect((await runtime.listContainers(node().uuid)).map((c) => c.name)).toEqual(['drover-web']);
    expect((await runtime.listContainers(other)).map((c) => c.name)).toEqual(['drover-elsewhere']);
  });

  it('runs a command in the container and returns its exit code, and times out a slow one', async () => {
    const [c] = await runtime.listContainers(node().uuid);
    expect(await runtime.exec(c!.id, ['true'], 5_000)).toEqual({ exitCode: 0 });
    expect(await runtime.exec(c!.id, ['sh', '-c', 'exit 3'], 5_000)).toEqual({ exitCode: 3 });
    const err = await runtime.exec(c!.id, ['sleep', '5'], 300).catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_EXEC_TIMEOUT')).toBe(true);
  });

  it('sees a killed container as exited with 137, and starts it again with restart', async () => {
    const [before] = await runtime.listContainers(node().uuid);
    const { stdout: pid } = await docker('inspect', '--format', '{{.State.Pid}}', before!.id);
    process.kill(Number(pid), 'SIGKILL');
    let after = before!;
    for (let i = 0; i < 100 && after.running; i++) {
      await new Promise((r) => setTimeout(r, 50));
      [after] = (await runtime.listContainers(node().uuid)) as [typeof after];
    }
    expect(after).toMatchObject({ running: false, status: 'exited', exitCode: 137 });
    expect(after.finishedAt).toBeGreaterThanOrEqual(before!.startedAt!);
    await runtime.restart(after.id, 1);
    const [again] = await runtime.listContainers(node().uuid);
    expect(again).toMatchObject({ running: true });
    expect(again!.startedAt).toBeGreaterThan(before!.startedAt!);
  });

  it('refuses to remove a running container, and treats stop and remove as idempotent', async () => {
    const [c] = await runtime.listContainers(other);
    const err = await runtime.remove(c!.id).catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_DOCKER_CONFLICT')).toBe(true);
    await runtime.stop(c!.id, 1);
    await runtime.stop(c!.id, 1);
    await runtime.remove(c!.id);
    await runtime.remove(c!.id);
    expect(await runtime.listContainers(other)).toEqual([]);
  });

  it('stopProcesses signals the first process itself and returns once every process of the container ended, with what it wrote on its way out on disk', async () => {
    // pid 1 writes on SIGTERM and leaves a child behind, which the kernel kills after it.
    const s = spec(
      'writer',
      {
        command_line: ['sh', '-c', 'sleep 1000 & trap "echo flushed > /data/at-exit; exit 0" TERM; while true; do sleep 0.05; done'],
        volumes: [{ dataset_id: '00000000-0000-4000-8000-000000000003', mountpoint: '/data' }],
      },
      undefined,
      new Map([['00000000-0000-4000-8000-000000000003', dataDir]]),
    );
    await runtime.createAndStart(s);
    const c = (await runtime.listContainers(node().uuid)).find((x) => x.name === 'drover-writer')!;
    const pid = Number((await docker('inspect', '--format', '{{.State.Pid}}', c.id)).stdout.trim());
    const ns = await readlink(`/proc/${pid}/ns/pid`);
    const since = Date.now() / 1000 - 1;
    await runtime.stopProcesses(c.id, 10);
    expect(await readFile(join(dataDir, 'at-exit'), 'utf8')).toBe('flushed\n');
    // The signal went straight to the process (no `kill` of Docker's own), and Docker saw it die.
    await expect
      .poll(async () => (await docker('events', '--filter', `container=${c.id}`, '--since', String(since), '--until', String(Date.now() / 1000), '--format', '{{.Action}}')).stdout.split('\n'), { timeout: 10_000 })
      .toContain('die');
    expect((await docker('events', '--filter', `container=${c.id}`, '--since', String(since), '--until', String(Date.now() / 1000), '--format', '{{.Action}}')).stdout.split('\n')).not.toContain('kill');
    const left: string[] = [];
    for (const p of (await readdir('/proc')).filter((x) => /^\d+$/.test(x))) {
      if ((await readlink(`/proc/${p}/ns/pid`).catch(() => null)) === ns) left.push(p);
    }
    expect(left).toEqual([]);
    // Docker's own stop finishes the teardown; then the container reads exited.
    await runtime.stop(c.id, 1);
    expect((await runtime.listContainers(node().uuid)).find((x) => x.name === 'drover-writer')).toMatchObject({ running: false, exitCode: 0 });
    await runtime.remove(c.id);
  });

  it('refuses a bind mount whose source is missing instead of creating an empty directory', async () => {
    const missing = join(dataDir, 'not-there');
    const s = spec('nodata', { volumes: [{ dataset_id: '00000000-0000-4000-8000-000000000002', mountpoint: '/data' }] }, undefined, new Map([['00000000-0000-4000-8000-000000000002', missing]]));
    const err = await runtime.createAndStart(s).catch((e: unknown) => e);
    expect(isDroverError(err)).toBe(true);
    expect((err as Error).message).toMatch(/bind source path does not exist/);
    await expect(docker('inspect', 'drover-nodata')).rejects.toThrow();
  });

  it('says clearly when an image is not there and cannot be pulled', async () => {
    const err = await runtime.createAndStart(spec('noimage', { image: 'drover/does-not-exist:1' })).catch((e: unknown) => e);
    expect(isDroverError(err)).toBe(true);
    expect((err as Error).message).toMatch(/pull image|could not be pulled|did not answer/);
  });
});

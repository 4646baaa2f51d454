import { randomUUID } from 'node:crypto';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { Application } from '#common/model.ts';
import { DockerRuntime } from '../../convergence-agent/docker.ts';
import { Gates } from '../../convergence-agent/gate/gates.ts';
import { containerSpec } from '../../convergence-agent/plan/container-spec.ts';
import { execaRunner } from '../../convergence-agent/zfs/command.ts';
import { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';

// A warm start (convergence-agent/gate/README.md) against a real dockerd and zfs-fuse: the
// container starts before its dataset is mounted, its application waits behind the gate,
// and once the dataset is mounted on the host and the gate opened, the application runs on
// the dataset's data — the mount reached the running container through rslave propagation.
describeWith(['root', 'dockerd', 'zfs'], 'gated containers on a local-cluster node', () => {
  const cluster = useTestCluster({ nodes: 1, docker: true, ssh: false, images: ['busybox'] });
  const node = () => cluster().nodes[0]!;
  const datasetId = randomUUID();
  const gateIds = [randomUUID(), randomUUID()];
  let runtime: DockerRuntime;
  let store: ZfsStore;
  let gates: Gates;
  let mountpoint: string;

  const app = (name: string) =>
    Application.parse({
      name,
      image: 'drover/busybox:latest',
      // The application's first act is a write into its dataset.
      command_line: ['sh', '-c', 'date > /data/started && exec httpd -f -p 8080 -h /data'],
      ports: [{ internal: 8080, external: 18080 }],
      volumes: [{ dataset_id: datasetId, mountpoint: '/data' }],
    });
  const spec = (name: string) => containerSpec(app(name), { nodeUuid: node().uuid, address: node().address, generation: 7, mountpoints: new Map([[datasetId, mountpoint]]) });
  const container = async (name: string) => (await runtime.listContainers(node().uuid)).find((c) => c.name === `drover-${name}`)!;
  const get = async (port: number): Promise<string | null> => {
    try {
      const res = await fetch(`http://${node().address}:${port}/index.html`, { signal: AbortSignal.timeout(1_000) });
      return res.ok ? await res.text() : null;
    } catch {
      return null;
    }
  };
  const until = async <T>(what: string, check: () => Promise<T | null>): Promise<T> => {
    for (let i = 0; i < 100; i++) {
      const value = await check();
      if (value !== null) return value;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  beforeAll(async () => {
    runtime = new DockerRuntime({ socketPath: node().dockerSocket!, pullTimeoutMs: 5_000 });
    store = new ZfsStore({ pool: node().pool });
    gates = new Gates({ root: join(node().stateDir, 'gates'), shell: '/bin/busybox', runner: execaRunner, log: silentLogger() });
    expect(await Gates.detect('/bin/busybox')).toEqual({ ok: true });
    await store.createDataset(datasetId, { maximumSize: null });
    const info = (await store.listAll()).datasets.find((d) => d.datasetId === datasetId)!;
    mountpoint = info.mountpoint!;
    await store.unmount(datasetId);
  });
  afterAll(async () => {
    for (const c of await runtime.listContainers(node().uuid).catch(() => [])) {
      await runtime.stop(c.id, 1).catch(() => {});
      await runtime.remove(c.id).catch(() => {});
    }
    for (const id of gateIds) await gates.remove(id);
    await store.destroyDataset(datasetId).catch(() => {});
  });

  it('runs the application on its dataset only once the dataset is mounted and the gate opened, and a restart goes straight through', async () => {
    const gate = await gates.prepare(gateIds[0]!);
    await gates.prepareBindSource(mountpoint);
    await runtime.createAndStart(spec('warm'), gate);
    const started = await container('warm');
    expect(started).toMatchObject({ running: true, labels: { 'drover.gate': gateIds[0] } });
    expect(await gates.state(gateIds[0]!)).toEqual({ state: 'closed' });
    const port = started.published[0]!.host_port;
    // Behind the gate the application has not run: nothing serves, nothing was written.
    await new Promise((r) => setTimeout(r, 300));
    expect(await get(port)).toBeNull();
    await expect(access(join(mountpoint, 'started'))).rejects.toThrow();

    await store.mount(datasetId);
    await writeFile(join(mountpoint, 'index.html'), 'served from the dataset\n');
    await gates.open(gateIds[0]!);
    expect(await until('the application behind the gate', () => get(port))).toBe('served from the dataset\n');
    expect(await readFile(join(mountpoint, 'started'), 'utf8')).not.toBe('');
    expect((await gates.state(gateIds[0]!)).state).toBe('open');

    await runtime.restart(started.id, 1);
    const again = await container('warm');
    expect(await until('the application after a restart', () => get(again.published[0]!.host_port))).toBe('served from the dataset\n');
    await runtime.stop(started.id, 1);
    await runtime.remove(started.id);
  });

  it('stops a container waiting behind its gate at once, not after the stop timeout', async () => {
    await store.unmount(datasetId);
    const gate = await gates.prepare(gateIds[1]!);
    await gates.prepareBindSource(mountpoint);
    await runtime.createAndStart(spec('waiting'), gate);
    const c = await container('waiting');
    const before = Date.now();
    await runtime.stop(c.id, 20);
    expect(Date.now() - before).toBeLessThan(5_000);
    expect(await container('waiting')).toMatchObject({ running: false, exitCode: 143 });
    await runtime.remove(c.id);
  });
});

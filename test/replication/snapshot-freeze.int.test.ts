/**
 * The freeze during the interval snapshot (docs/DESIGN.md §47) against the host's dockerd and
 * a zfs-fuse pool: a container writing into a dataset is paused while the dataset's snapshot
 * runs, an agent killed between the freeze and the thaw leaves it paused, and the next agent's
 * start thaws it from the journal.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { DockerRuntime } from '../../convergence-agent/docker.ts';
import { mountingContainers, SnapshotFreezer } from '../../convergence-agent/replication/snapshot-freeze.ts';
import { createTempPool, type TempPool } from '../../convergence-agent/testing/temp-pool.ts';
import { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';
import { ensureImageArchive, imageTag } from '../../local-cluster/index.ts';
import { describeWith } from '../support/require.ts';

const HOST_DOCKER = 'unix:///var/run/docker.sock';
const docker = (...args: string[]) => execa('docker', ['-H', HOST_DOCKER, ...args], { timeout: 120_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeWith(['root', 'dockerd', 'zfs'], 'the snapshot freeze on dockerd and zfs-fuse', () => {
  const image = imageTag('busybox');
  const nodeUuid = randomUUID();
  const datasetId = randomUUID();
  const name = `drover-fz${randomUUID().slice(0, 8)}`;
  let pool: TempPool;
  let store: ZfsStore;
  let stateDir: string;
  let containerId = '';
  const paused = async (): Promise<boolean> => (await docker('inspect', '--format', '{{.State.Paused}}', containerId)).stdout.trim() === 'true';
  const logSize = async (): Promise<number> => (await stat(join(pool.mountRoot, datasetId, 'log'))).size;

  beforeAll(async () => {
    if ((await docker('image', 'inspect', image).catch(() => null)) === null) {
      await docker('load', '-q', '-i', await ensureImageArchive('busybox', silentLogger()));
    }
    pool = await createTempPool({ sizeMiB: 128 });
    store = new ZfsStore({ pool: pool.name, mountRoot: pool.mountRoot });
    await store.createDataset(datasetId, { maximumSize: null });
    stateDir = await mkdtemp(join(tmpdir(), 'drover-freeze-int-'));
    // A writer into the dataset, labelled as drover's containers of this node are.
    const mount = join(pool.mountRoot, datasetId);
    containerId = (
      await docker('run', '-d', '--name', name, '--label', `drover.node=${nodeUuid}`, '-v', `${mount}:/data`, image, 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i >> /data/log; sleep 0.01; done')
    ).stdout.trim();
    for (let i = 0; i < 100 && (await logSize().catch(() => 0)) === 0; i++) await sleep(100);
  }, 180_000);

  afterAll(async () => {
    if (containerId !== '') await docker('rm', '-f', containerId).catch(() => undefined);
    await pool?.destroy();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  }, 180_000);

  const freezer = (journal: string, deadlineMs?: number) => {
    const runtime = new DockerRuntime({ socketPath: '/var/run/docker.sock' });
    return new SnapshotFreezer({
      runtime,
      containersOf: mountingContainers({ mountpointOf: async (id) => (await store.getDataset(id))?.mountpoint ?? null, listContainers: () => runtime.listContainers(nodeUuid) }),
      journal,
      log: silentLogger(),
      ...(deadlineMs === undefined ? {} : { deadlineMs }),
    });
  };

  it('pauses the writing container while the snapshot runs and lets it write again after', async () => {
    const f = freezer(join(stateDir, 'a.json'));
    let during: { paused: boolean; grew: boolean } | null = null;
    await f.around(datasetId, async () => {
      await store.takeSnapshot(datasetId, 'drover-in-freeze');
      const before = await logSize();
      await sleep(300);
      during = { paused: await paused(), grew: (await logSize()) > before };
    });
    expect(during).toEqual({ paused: true, grew: false });
    expect(await paused()).toBe(false);
    const after = await logSize();
    await expect.poll(logSize, { timeout: 5_000 }).toBeGreaterThan(after);
    expect((await store.listSnapshots(datasetId)).map((s) => s.snapshot)).toContain('drover-in-freeze');
    f.close();
  });

  it('thaws at the deadline while the snapshot still runs', async () => {
    const f = freezer(join(stateDir, 'b.json'), 300);
    let pausedLate: boolean | null = null;
    await f.around(datasetId, async () => {
      await sleep(1_000);
      pausedLate = await paused();
    });
    expect(pausedLate).toBe(false);
    f.close();
  });

  it('undoes, at the next start, a freeze whose agent was killed between the freeze and the thaw', async () => {
    const journal = join(stateDir, 'crash.json');
    const config = { pool: pool.name, mountRoot: pool.mountRoot, datasetId, nodeUuid, journal };
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'freeze-child.ts'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let frozen = '';
    for await (const line of createInterface({ input: child.stdout! })) {
      if (!line.startsWith('frozen ')) continue;
      frozen = line.slice('frozen '.length);
      child.kill('SIGKILL');
      break;
    }
    await exited;
    expect(frozen).toBe(containerId);
    // The dead agent left the application frozen, and its journal says so.
    expect(await paused()).toBe(true);
    expect(JSON.parse(await readFile(journal, 'utf8'))).toEqual({ frozen: [containerId] });
    const size = await logSize();
    await sleep(300);
    expect(await logSize()).toBe(size);

    const next = freezer(journal);
    expect(await next.recover()).toEqual([containerId]);
    expect(await paused()).toBe(false);
    expect(JSON.parse(await readFile(journal, 'utf8'))).toEqual({ frozen: [] });
    await expect.poll(logSize, { timeout: 5_000 }).toBeGreaterThan(size);
    next.close();
  }, 60_000);
});

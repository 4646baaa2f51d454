import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AckedWriter } from '../../cli/demo/redis-load.ts';
import { healNode, partitionNode } from '../../local-cluster/index.ts';
import { useTestCluster } from '../support/cluster.ts';
import { LOCAL_CLUSTER, describeWith } from '../support/require.ts';
import { until } from '../migration/stack.ts';
import { pong, ReplicationWorld, type RedisApp } from '../replication/world.ts';

// A partition on a 3-node local cluster with isolated nodes (docs/DESIGN.md §18, §20): Redis with
// `replicas: 1` on n1 (n3 cordoned, so the replica is n2 and, after the failover, the only node
// left to become the new replica is n1), a client writing through n3's proxy. n1 is cut off
// (its veth down) while its processes keep running: its own agent stops its Redis (self-fencing)
// before the control service promotes the replica on n2. Healed, n1 runs no Redis, keeps its
// diverged copy aside, becomes n2's replica, and no write sent after the promotion is in n1's copy.
const LONG = 240_000;
const INTERVAL_S = 2;

/** The `w:<seq>` keys found in any file under `dir` (Redis' AOF and RDB name their keys in plain text). */
async function keysIn(dir: string): Promise<number[]> {
  const seqs = new Set<number>();
  const walk = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) for (const m of (await readFile(full, 'latin1')).matchAll(/w:(\d+)/g)) seqs.add(Number(m[1]));
    }
  };
  await walk(dir);
  return [...seqs].sort((a, b) => a - b);
}

/** Whether n<index>'s dockerd runs a container of `app` (asked over its unix socket, which no partition cuts). */
async function runsApp(dockerHost: string, app: RedisApp): Promise<boolean> {
  const ps = await execa('docker', ['-H', dockerHost, 'ps', '--format', '{{.Names}}'], { reject: false, timeout: 10_000 });
  return ps.stdout.split('\n').some((name) => name.includes(app.name));
}

describeWith(LOCAL_CLUSTER, 'a partitioned node fences itself and comes back as a replica (3 isolated nodes)', () => {
  const cluster = useTestCluster({ nodes: 3, images: ['busybox', 'redis'], poolSizeMiB: 1024, isolate: true });
  let world: ReplicationWorld;
  let app: RedisApp;
  let writer: AckedWriter;
  let partitioned = false;

  beforeAll(async () => {
    world = await ReplicationWorld.start(cluster());
    await world.api.cordonNode(world.node(3).uuid);
    app = await world.deployRedis('part', 16700, 1, { replicas: 1, intervalS: INTERVAL_S });
    writer = new AckedWriter(() => world.proxy(app, 3), { prefix: 'w:', intervalMs: 5 });
    writer.start();
  }, LONG);

  afterAll(async () => {
    if (partitioned) await healNode(world.cluster).catch(() => undefined);
    await writer?.stop();
    if (world && process.env.DROVER_KEEP_LOGS) await world.keepLogs(join(tmpdir(), `drover-partition-e2e-${process.pid}`));
  });

  it('n1 cut off: its own agent stops Redis before the replica on n2 is promoted; healed, n1 keeps its diverged copy, becomes the replica, and holds no write sent after the promotion', async () => {
    const n1 = world.node(1);
    const n2 = world.node(2);
    let last: unknown = null;
    await until('n2 a replica, ok and recent', async () => {
      const r = (await world.replication(app))?.replicas[0];
      last = r;
      return r?.node === n2.uuid && r.state === 'ok' && (r.lag_seconds ?? Infinity) <= 2 * INTERVAL_S;
    }, 120_000, 250).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; replica: ${JSON.stringify(last)}`);
    });
    await until('writes acknowledged', async () => writer.acked > 300, 60_000);

    const cut = await partitionNode(world.cluster, 'n1');
    partitioned = true;
    const ackedAtPartition = writer.acked;
    // Watch n1's dockerd (its unix socket is not cut) and the control service until the promotion.
    let fencedAt: number | null = null;
    const promotedAt = await until('Redis promoted on n2', async () => {
      if (fencedAt === null && !(await runsApp(n1.dockerHost!, app))) fencedAt = performance.now();
      const a = await world.api.application(app.name);
      return a.node_uuid === n2.uuid && performance.now();
    }, 120_000, 250);
    const ackedAtPromotion = writer.acked;
    console.log(
      `partition: n1 fenced ${fencedAt === null ? 'never' : `${((fencedAt - cut.at) / 1000).toFixed(1)} s`} after the cut, ` +
        `Redis promoted on n2 ${((promotedAt - cut.at) / 1000).toFixed(1)} s after it`,
    );
    expect(fencedAt).not.toBeNull();
    expect(fencedAt!).toBeLessThan(promotedAt);
    await until('PONG through n3 from n2', () => pong(world.proxy(app, 3)), 60_000, 250);
    await until('writes acknowledged by n2', async () => writer.acked > ackedAtPromotion + 200, 60_000, 250);

    await healNode(world.cluster, 'n1');
    partitioned = false;
    await until('n1 known again', async () => (await world.api.nodes()).some((n) => n.uuid === n1.uuid && n.state === 'known'), 60_000, 500);
    const record = (await world.api.migrations()).find((m) => m.failover !== undefined && m.application === app.name)!;
    expect(record.from).toBe(n1.uuid);
    expect(record.to).toBe(n2.uuid);
    const kept = `${n1.pool}/drover-diverged/${app.datasetId}-g${record.generation}`;
    await until(`${kept} on n1`, async () => {
      const out = await execa('zfs', ['list', '-H', '-o', 'name', '-r', n1.pool], { timeout: 30_000 });
      return out.stdout.split('\n').includes(kept);
    }, 60_000, 500);
    await until('n1 the replica of n2, ok', async () => {
      const r = await world.replication(app);
      return r?.primary === n2.uuid && r.replicas.some((x) => x.node === n1.uuid && x.state === 'ok');
    }, 90_000, 500);

    // Exactly one primary: n2 runs Redis, n1 and n3 do not.
    expect((await world.api.application(app.name)).node_uuid).toBe(n2.uuid);
    expect(await runsApp(n2.dockerHost!, app)).toBe(true);
    expect(await runsApp(n1.dockerHost!, app)).toBe(false);
    expect(await runsApp(world.node(3).dockerHost!, app)).toBe(false);

    // What reached n1's copy: read the kept copy through a temporary mount point (it is kept with none).
    const dir = await mkdtemp(join(tmpdir(), 'drover-kept-'));
    let seqs: number[];
    try {
      await execa('zfs', ['set', `mountpoint=${dir}`, kept], { timeout: 60_000 });
      await execa('zfs', ['mount', kept], { reject: false, timeout: 60_000 });
      seqs = await keysIn(dir);
    } finally {
      await execa('zfs', ['umount', kept], { reject: false, timeout: 60_000 });
      await execa('zfs', ['set', 'mountpoint=none', kept], { timeout: 60_000 });
      await rm(dir, { recursive: true, force: true });
    }
    const afterPromotion = seqs.filter((seq) => seq > ackedAtPromotion + 1);
    console.log(
      `partition: n1's kept copy holds ${seqs.length} writes (newest w:${seqs.at(-1)}; ${ackedAtPartition} acknowledged at the cut, ` +
        `${ackedAtPromotion} at the promotion), ${afterPromotion.length} sent after the promotion`,
    );
    expect(seqs.length).toBeGreaterThan(0);
    expect(afterPromotion).toEqual([]);
    // Nothing even after the cut: the partition kept the client's writes from n1 altogether.
    expect(seqs.at(-1)!).toBeLessThanOrEqual(ackedAtPartition + 1);
  }, LONG);
});

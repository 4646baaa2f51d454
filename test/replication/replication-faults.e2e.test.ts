import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isTerminal } from '#common/migration-protocol.ts';
import { AckedWriter, loadData } from '../../cli/demo/redis-load.ts';
import { useTestCluster } from '../support/cluster.ts';
import { LOCAL_CLUSTER, describeWith } from '../support/require.ts';
import { until } from '../migration/stack.ts';
import { MiB, RETENTION, ReplicationWorld, replicationEvents, sampling, trouble, type RedisApp } from './world.ts';

// Faults on a replica's pool, on a 3-node local cluster with drover's processes (issue 15):
// Redis on node 1 replicated to nodes 2 and 3 every 2 s, a client writing through node 1's
// proxy. A full replica pool is a clear error in the API and in `drover status`, and the
// primary does not notice; a replica written outside drover is reported diverged and left
// as it is, and a move of the application to it sets that copy aside whole (never rolled back
// over or destroyed) and sends the dataset whole. The healthy path and a replica node down: replication.e2e.test.ts.
const LONG = 300_000;
const INTERVAL_S = 2;

describeWith(LOCAL_CLUSTER, 'replication to a replica whose pool is full or was written outside drover (3-node local cluster)', () => {
  const cluster = useTestCluster({ nodes: 3, images: ['busybox', 'redis'], poolSizeMiB: 1024 });
  let world: ReplicationWorld;
  let app: RedisApp;
  let writer: AckedWriter;

  beforeAll(async () => {
    world = await ReplicationWorld.start(cluster());
    // Deployed without a policy, then given one through the API (replication.e2e.test.ts
    // deploys with `x-drover.replication` in the Compose file).
    app = await world.deployRedis('faults', 16510, 1, null);
    await world.api.setApplicationReplication(app.name, { replicas: 2, interval_seconds: INTERVAL_S, retention: RETENTION });
    await loadData(world.proxy(app), { prefix: 'data:', bytes: 4 * MiB, valueBytes: 4096, pipeline: 16 });
    writer = new AckedWriter(() => world.proxy(app), { prefix: 'w:', intervalMs: 5 });
    writer.start();
    await until('both replicas ok', async () => {
      const s = await world.replication(app);
      return s?.replicas.length === 2 && s.replicas.every((r) => r.state === 'ok');
    }, 180_000, 250);
  }, LONG);

  afterAll(async () => {
    await writer?.stop();
    if (world && process.env.DROVER_KEEP_LOGS) await world.keepLogs(join(tmpdir(), `drover-replication-e2e-${process.pid}`));
    if (world) {
      await world.freePool(3);
    }
  });

  it('reports a full replica pool as an error in the API and in drover status, and the primary keeps taking writes', async () => {
    const stream = replicationEvents(world.api);
    await world.fillPool(3);
    try {
      const failedBefore = writer.failedCount;
      const { value: broken, samples } = await sampling(async () => (await world.replica(app, 2))!, 500, () =>
        until('n3 in error, saying the pool is full', async () => {
          const r = await world.replica(app, 3);
          if (r?.state !== 'error' || !/space|full/i.test(trouble(r))) throw new Error(`n3 is ${r?.state}: ${r ? trouble(r) : 'not listed'}`);
          return r;
        }, 60_000, 250),
      );
      expect(broken.problem).toBeTruthy();
      await until('a replication event for n3', async () => stream.events.some((e) => e.dataset_id === app.datasetId && e.replica === world.node(3).uuid && e.state === 'error'), 10_000);

      // The primary does not notice: Redis takes every write, node 2 stays current.
      const acked = writer.acked;
      await new Promise((r) => setTimeout(r, 3 * INTERVAL_S * 1000));
      expect(writer.acked).toBeGreaterThan(acked + 100);
      expect(writer.failedCount).toBe(failedBefore);
      expect(samples.filter((s) => s.state !== 'ok').map((s) => `n2 ${s.state}: ${trouble(s)}`)).toEqual([]);
      expect(await world.property(app, 1, 'readonly')).toBe('off');
      await world.replicated(app, 2, 1, Date.now(), 10 * INTERVAL_S * 1000);
      const text = await world.status();
      const line = text.split('\n').find((l) => new RegExp(world.shownAs(3)).test(l) && /error|space|full/i.test(l));
      expect(line, `a status line naming n3's error:\n${text}`).toBeDefined();
    } finally {
      await stream.stop();
      await world.freePool(3);
    }
    // With space again it recovers by itself.
    await world.replicated(app, 3, 1, Date.now(), 60_000);
    await until('n3 ok again', async () => (await world.replica(app, 3))?.state === 'ok', 60_000);
  }, LONG);

  it('reports a replica written outside drover as diverged and does not overwrite it', async () => {
    await world.writeOutside(app, 2, 'outside.txt', 'written on n2 by hand');
    const diverged = await until('n2 diverged', async () => {
      const r = await world.replica(app, 2);
      if (r?.state !== 'diverged') throw new Error(`n2 is ${r?.state}: ${r ? trouble(r) : 'not listed'}`);
      return r;
    }, 60_000, 250);
    expect(trouble(diverged)).toMatch(/diverg|modified/i);
    const snapshotsThen = await world.snapshots(app, 2);

    // Several intervals later: node 3 goes on, node 2 is as it was left — nothing received,
    // rolled back or destroyed there, the file still in it.
    const { samples } = await sampling(async () => (await world.replica(app, 2))!, 500, async () => {
      await world.replicated(app, 3, 1, Date.now(), 10 * INTERVAL_S * 1000);
      await new Promise((r) => setTimeout(r, 2 * INTERVAL_S * 1000));
    });
    // Diverged stays diverged: each step finds the same refusal, not another error.
    expect(samples.filter((s) => s.state !== 'diverged').map((s) => `n2 ${s.state}: ${trouble(s)}`)).toEqual([]);
    const known = new Set(snapshotsThen.map((s) => s.guid));
    expect((await world.snapshots(app, 2)).filter((s) => !known.has(s.guid))).toEqual([]);
    expect(await world.readOutside(app, 2, 'outside.txt')).toBe('written on n2 by hand');
    expect(await world.status()).toMatch(/diverged/);
  }, LONG);

  it('moves the application to the diverged replica by setting its copy aside whole, and tells the operator where it is', async () => {
    const snapshotsThen = await world.snapshots(app, 2);
    const events = replicationEvents(world.api);
    const answer = await world.api.moveApplication(app.name, world.node(2).uuid);
    const migration = await until('the move ended', async () => {
      const m = await world.api.migration(answer.migration!.id);
      return isTerminal(m.phase) && m;
    }, 240_000, 250);
    expect(migration).toMatchObject({ phase: 'done', error: null });
    const kept = `${world.node(2).pool}/drover-diverged/${world.datasetName(app, 2).split('/').at(-1)}-g${migration.generation}`;
    // Every acknowledged write is served from n2.
    const acked = writer.acked;
    await until('writes acknowledged after the move', async () => writer.acked > acked + 50, 60_000);
    const report = await writer.stop();
    expect(report.acked).toBeGreaterThan(100);
    expect((await writer.verify(world.proxy(app))).lost).toEqual([]);
    // The diverged copy is whole under drover-diverged/: its snapshots and the hand-written file.
    const keptSnapshots = await world.snapshotsOf(kept);
    expect(keptSnapshots.map((x) => x.guid)).toEqual(snapshotsThen.map((x) => x.guid));
    expect(await world.readKept(kept, 'outside.txt')).toBe('written on n2 by hand');
    // The operator is told where: the API's kept copies and drover status.
    const told = await until('the kept copy reported', async () => {
      const s = await world.replication(app);
      return s?.kept?.find((k) => k.name === kept) ?? false;
    }, 60_000, 250);
    expect(told.node).toBe(world.node(2).uuid);
    expect(await world.status()).toContain(kept);
    // … and the events stream, once.
    await until('the kept event', async () => events.events.some((e) => e.kept === kept), 60_000, 250);
    await events.stop();
    expect(events.events.filter((e) => e.kept === kept)).toMatchObject([{ replica: world.node(2).uuid, state: 'diverged' }]);
  }, LONG);
});

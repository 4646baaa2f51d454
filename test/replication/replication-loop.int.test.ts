/**
 * Continuous replication (issue 15) on real zfs-fuse pools and OpenSSH: a primary and two
 * replicas of a local cluster, the agent's ReplicationScheduler on the system clock with a
 * 1 s interval (convergence-agent/replication/DESIGN.md).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemClock } from '#common/clock.ts';
import { silentLogger } from '#common/log.ts';
import type { AgentDesired } from '#common/channel.ts';
import type { Dataset, Node, ReplicaStatus } from '#common/model.ts';
import { ReplicationScheduler } from '../../convergence-agent/replication/scheduler.ts';
import { pruneEveryMs } from '../../convergence-agent/replication/prune.ts';

/** Snapshots a side may hold beyond its grid: each side is pruned every 10 intervals (1 s here). */
const PRUNE_MARGIN = pruneEveryMs(1) / 1000;
import { Replicator } from '../../convergence-agent/transfer/replicate.ts';
import type { SshPeer } from '../../convergence-agent/transfer/ssh-peer.ts';
import type { Peer } from '../../convergence-agent/transfer/types.ts';
import { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';
import { TcpCutter, sshPeerFor, writeRandom, zfsSet } from '../transfer/helpers.ts';

const RETENTION = { primary: '1x3s(keep=all) | 2x5s', replicas: '1x2s(keep=all) | 1x5s' };

describeWith(['root', 'zfs', 'sshd'], 'continuous replication to two replicas', () => {
  const cluster = useTestCluster({ nodes: 3, docker: false, ssh: true });
  let primary: ZfsStore;
  let replicas: ZfsStore[];
  let nodes: Node[];
  let stateDir: string;
  let cutter: TcpCutter;
  const peers = new Map<string, Peer>();
  const opened: SshPeer[] = [];
  let scheduler: ReplicationScheduler | null = null;

  beforeAll(async () => {
    const [n1, n2, n3] = cluster().nodes;
    primary = new ZfsStore({ pool: n1!.pool });
    replicas = [new ZfsStore({ pool: n2!.pool }), new ZfsStore({ pool: n3!.pool })];
    nodes = [n1!, n2!, n3!].map((n) => ({ uuid: n.uuid, host: '127.0.0.1', labels: {}, transfer: {} }));
    stateDir = await mkdtemp(join(tmpdir(), 'drover-replication-'));
    // n2 is reached through a TCP relay the test can cut; n3 directly.
    cutter = new TcpCutter();
    const port = await cutter.listen(n2!.ssh!.host, n2!.ssh!.port);
    const p2 = await sshPeerFor(cluster(), n2!, { host: '127.0.0.1', port });
    const p3 = await sshPeerFor(cluster(), n3!);
    opened.push(p2, p3);
    peers.set(n2!.uuid, p2).set(n3!.uuid, p3);
  });

  afterAll(async () => {
    await scheduler?.stop();
    for (const p of opened) await p.close();
    await cutter?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  function start(): ReplicationScheduler {
    // retries: 0, so a cut stream fails its step and the next interval is the recovery.
    const replicator = new Replicator({ store: primary, stateDir, retries: 0, stallMs: 20_000 });
    scheduler = new ReplicationScheduler({
      nodeUuid: nodes[0]!.uuid,
      clock: systemClock,
      log: silentLogger(),
      store: primary,
      replicate: (o) => replicator.replicate(o),
      settle: (p, d) => replicator.settle(p, d),
      peers: { peerFor: async (n) => peers.get(n.uuid)!, close: async () => {} },
      concurrency: 4,
    });
    return scheduler;
  }

  function view(id: string): AgentDesired {
    const dataset: Dataset = {
      dataset_id: id,
      primary: nodes[0]!.uuid,
      replication: { replicas: 2, interval_seconds: 1, retention: RETENTION },
      replicas: [nodes[1]!.uuid, nodes[2]!.uuid],
      maximum_size: null,
      metadata: {},
      deleted: false,
    };
    return { version: 1, node: nodes[0]!, nodes, datasets: [dataset], applications: [], leases: [], migrations: [] };
  }

  async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 90_000, everyMs = 200): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}; statuses ${JSON.stringify(scheduler?.statuses())}`);
      await systemClock.sleep(everyMs);
    }
  }

  const statusOf = (replica: number): ReplicaStatus => scheduler!.statuses().find((s) => s.replica === nodes[replica]!.uuid)!;

  it('keeps both replicas at the newest snapshot, prunes by the grid on both sides, never the newest common, and recovers a cut transport at the next interval', async () => {
    const id = randomUUID();
    const info = await primary.createDataset(id, { maximumSize: null });
    const s = start();
    s.sync(view(id));
    for (let i = 0; i < 6; i++) {
      await writeFile(join(info.mountpoint!, `f${i}.txt`), `write ${i}\n`.repeat(500));
      await systemClock.sleep(1_000);
    }
    await until('both replicas ok', () => [1, 2].every((r) => statusOf(r)?.state === 'ok'));
    const before = statusOf(1).bytes_sent_total;

    // Cut the stream to n2 in its next step (4 MiB to send, cut after 1 MiB): that step
    // fails, the following one recovers.
    await writeRandom(join(info.mountpoint!, 'big.bin'), 4);
    cutter.cutAfterBytes = cutter.bytes + (1 << 20);
    await until('the cut step reported', () => statusOf(1).state === 'error', 90_000, 50);
    expect(statusOf(1).last_error?.code).toMatch(/^DROVER_/);
    await until('n2 recovered', () => statusOf(1).state === 'ok', 90_000);
    expect(statusOf(1).bytes_sent_total).toBeGreaterThan(before);

    await systemClock.sleep(6_000); // long enough for the grids to prune
    // Both replicas hold the same newest snapshot (one snapshot per interval for both).
    let shared = '';
    await until('both replicas at one snapshot', async () => {
      const [a, b] = [statusOf(1).newest_snapshot, statusOf(2).newest_snapshot];
      if (a === null || a !== b) return false;
      const on = await Promise.all(replicas.map(async (r) => (await r.listSnapshots(id)).some((x) => x.snapshot === a)));
      shared = a;
      return on.every(Boolean);
    });
    await s.stop();
    scheduler = null;
    expect((await primary.listSnapshots(id)).some((x) => x.snapshot === shared)).toBe(true);

    const onPrimary = await primary.listSnapshots(id);
    for (const [i, replica] of replicas.entries()) {
      const snaps = await replica.listSnapshots(id);
      const guids = new Set(snaps.map((x) => x.guid));
      // The newest common snapshot with each replica is on the primary (kept, and held for it).
      const common = [...onPrimary].reverse().find((x) => guids.has(x.guid));
      expect(common, `replica ${i + 1} shares a snapshot with the primary`).toBeDefined();
      expect(common!.userrefs).toBeGreaterThan(0);
      expect(await replica.getDataset(id)).toMatchObject({ readonly: true, mounted: false });
      // Grid on the replica: nothing older than 2 s (keep=all) + one 5 s interval survives, but
      // the newest common does; pruned every 10 intervals, so up to 10 more in between.
      expect(snaps.length).toBeLessThanOrEqual(5 + PRUNE_MARGIN);
      expect(guids.has(common!.guid)).toBe(true);
    }
    // ~30 s at 1 s intervals would be ~30 snapshots without pruning (pruned every 10 intervals).
    expect(onPrimary.length).toBeLessThanOrEqual(7 + PRUNE_MARGIN);

    // Destroying the dataset on purpose releases every drover hold, the per-replica ones too.
    expect((await primary.recordedHoldTags(id)).sort()).toEqual(
      [nodes[1]!, nodes[2]!].flatMap((n) => [`drover-base-${n.uuid.replace(/-/g, '').slice(0, 8)}`, `drover-step-${n.uuid.replace(/-/g, '').slice(0, 8)}`]).sort(),
    );
    await primary.destroyDataset(id);
    expect(await primary.getDataset(id)).toBeNull();
    for (const replica of replicas) {
      for (const x of await replica.listSnapshots(id)) await replica.release(id, x.snapshot, 'drover-base');
      await replica.destroyDataset(id);
    }
  }, 300_000);

  it('reports a replica written outside drover as diverged and does not overwrite it, while the other replica goes on receiving', async () => {
    const id = randomUUID();
    const info = await primary.createDataset(id, { maximumSize: null });
    await writeFile(join(info.mountpoint!, 'a.txt'), 'primary\n');
    const s = start();
    s.sync(view(id));
    await until('both replicas seeded', () => [1, 2].every((r) => statusOf(r)?.state === 'ok'));
    await s.stop();
    scheduler = null;

    // Someone writes on n3's copy by hand.
    const r3 = replicas[1]!;
    zfsSet('readonly', 'off', `${r3.pool}/drover/${id}`);
    await r3.mount(id);
    const mountpoint = (await r3.getDataset(id))!.mountpoint!;
    await writeFile(join(mountpoint, 'outside.txt'), 'written outside drover\n');
    await r3.unmount(id);
    zfsSet('readonly', 'on', `${r3.pool}/drover/${id}`);
    const snapsBefore = (await r3.listSnapshots(id)).map((x) => x.guid);

    await writeFile(join(info.mountpoint!, 'b.txt'), 'more\n');
    const s2 = start();
    s2.sync(view(id));
    await until('n3 refused', () => statusOf(2)?.state === 'diverged' && statusOf(1)?.state === 'ok' && statusOf(1).bytes_sent_total > 0);
    expect(statusOf(2).last_error?.code).toBe('DROVER_ZFS_DIVERGED');
    // The diverged replica's failing steps share each interval's snapshot with n2's: n2 must
    // go on receiving, never in error (a failing step used to destroy the shared snapshot
    // under n2's send: "cannot hold …: dataset does not exist", for ever after).
    const seen = new Set<string>();
    const problems: string[] = [];
    let i = 0;
    await until('n2 received 4 more snapshots', async () => {
      const n2 = statusOf(1);
      if (n2.state !== 'ok') problems.push(`n2 ${n2.state}: ${n2.last_error?.message}`);
      if (n2.newest_snapshot) seen.add(n2.newest_snapshot);
      if (++i % 5 === 0) await writeFile(join(info.mountpoint!, 'c.txt'), `more ${i}\n`);
      return seen.size >= 5;
    }, 90_000, 100);
    expect(problems).toEqual([]);
    expect(statusOf(2).state).toBe('diverged');
    await s2.stop();
    scheduler = null;

    // Not rolled back, not overwritten: its snapshots and the hand-written file are still there.
    expect((await r3.listSnapshots(id)).map((x) => x.guid)).toEqual(snapsBefore);
    await r3.mount(id);
    expect(await readFile(join(mountpoint, 'outside.txt'), 'utf8')).toBe('written outside drover\n');
    await r3.unmount(id);

    await primary.destroyDataset(id);
    for (const replica of replicas) {
      for (const x of await replica.listSnapshots(id)) await replica.release(id, x.snapshot, 'drover-base');
      await replica.destroyDataset(id);
    }
  }, 240_000);
});

/**
 * The move-vs-replica-step race (convergence-agent/replication/DESIGN.md "Moves") on real
 * zfs-fuse pools and OpenSSH: n1 primary, replicas n2 and n3, 1 s interval. n2 is cut off for
 * a while, so n3 holds snapshots n2 lacks, and a large write keeps n3's step running when the
 * move to n2 begins. The move waits for that step, sends with -I, and after the handoff the
 * new primary n2 replicates to n3 incrementally — not "diverged" — with every acknowledged
 * write on both. The agent's wiring is main.ts's: beforeMove, then forMigration's options.
 *
 * And a move to a node with no copy (convergence-agent/replication/DESIGN.md "Moves"): n1
 * primary with one replica, n2; the application moves to n3, which holds nothing. The move's first round sends
 * n2's newest snapshot whole, then -I to its own (MoveStep, as main.ts wires it), so after the
 * handoff n3 replicates to n2 with a small incremental — not diverged, not reseeded.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemClock } from '#common/clock.ts';
import { silentLogger } from '#common/log.ts';
import type { AgentDesired } from '#common/channel.ts';
import type { Dataset, Migration, Node, ReplicaStatus } from '#common/model.ts';
import { MoveStep } from '../../convergence-agent/replication/move-step.ts';
import { ReplicationScheduler } from '../../convergence-agent/replication/scheduler.ts';
import { Replicator } from '../../convergence-agent/transfer/replicate.ts';
import type { SshPeer } from '../../convergence-agent/transfer/ssh-peer.ts';
import type { Peer, ReplicateOptions, ReplicateResult } from '../../convergence-agent/transfer/types.ts';
import { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';
import { hashFiles, replicaContents, sshPeerFor, writeRandom, zfsSet } from '../transfer/helpers.ts';

const RETENTION = { primary: '1x1m(keep=all) | 4x1m', replicas: '1x1m(keep=all) | 4x1m' };

describeWith(['root', 'zfs', 'sshd'], 'a move to a replica while a replication step runs', () => {
  const cluster = useTestCluster({ nodes: 3, docker: false, ssh: true });
  let stores: ZfsStore[];
  let nodes: Node[];
  let stateDirs: string[] = [];
  const opened: SshPeer[] = [];
  const schedulers: ReplicationScheduler[] = [];
  let n2Reachable = true;

  beforeAll(async () => {
    const all = cluster().nodes;
    stores = all.map((n) => new ZfsStore({ pool: n.pool }));
    nodes = all.map((n) => ({ uuid: n.uuid, host: '127.0.0.1', labels: {}, transfer: {} }));
    stateDirs = [await mkdtemp(join(tmpdir(), 'drover-move-race-1-')), await mkdtemp(join(tmpdir(), 'drover-move-race-2-'))];
  });

  afterAll(async () => {
    for (const s of schedulers) await s.stop();
    for (const p of opened) await p.close();
    for (const dir of stateDirs) await rm(dir, { recursive: true, force: true });
  });

  async function peer(i: number): Promise<SshPeer> {
    const p = await sshPeerFor(cluster(), cluster().nodes[i]!);
    opened.push(p);
    return p;
  }

  function view(id: string, primary: number, replicas: number[], migrations: Migration[] = []): AgentDesired {
    const dataset: Dataset = {
      dataset_id: id,
      primary: nodes[primary]!.uuid,
      replication: { replicas: replicas.length, interval_seconds: 1, retention: RETENTION },
      replicas: replicas.map((r) => nodes[r]!.uuid),
      maximum_size: null,
      metadata: {},
      deleted: false,
    };
    return { version: 1, node: nodes[primary]!, nodes, datasets: [dataset], applications: [], leases: [], migrations };
  }

  async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 120_000, everyMs = 100): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}; statuses ${JSON.stringify(schedulers.map((s) => s.statuses()))}`);
      await systemClock.sleep(everyMs);
    }
  }

  it('waits for the running step, gives the target every snapshot a replica holds, and the new primary replicates to the other replica without loss', async () => {
    const id = randomUUID();
    const [s1, s2, s3] = stores as [ZfsStore, ZfsStore, ZfsStore];
    const info = await s1.createDataset(id, { maximumSize: null });
    await writeFile(join(info.mountpoint!, 'a.txt'), 'first\n');
    const [p2, p3] = [await peer(1), await peer(2)];

    // The old primary's agent: the scheduler and the move share one Replicator, as in main.ts.
    const replicator = new Replicator({ store: s1, stateDir: stateDirs[0]!, retries: 0, stallMs: 60_000 });
    const running = new Map<string, { snapshot: string | undefined; began: number }>();
    const ended: { peer: string; ok: boolean; at: number }[] = [];
    const replicate = async (o: ReplicateOptions): Promise<ReplicateResult> => {
      running.set(o.peer.id, { snapshot: o.snapshotName, began: Date.now() });
      try {
        const r = await replicator.replicate(o);
        ended.push({ peer: o.peer.id, ok: true, at: Date.now() });
        return r;
      } catch (err) {
        ended.push({ peer: o.peer.id, ok: false, at: Date.now() });
        throw err;
      } finally {
        running.delete(o.peer.id);
      }
    };
    const old = new ReplicationScheduler({
      nodeUuid: nodes[0]!.uuid,
      clock: systemClock,
      log: silentLogger(),
      store: s1,
      replicate,
      settle: (p, d) => replicator.settle(p, d),
      peers: {
        peerFor: async (n): Promise<Peer> => {
          if (n.uuid === nodes[1]!.uuid && !n2Reachable) throw new Error('n2 is unreachable (cut off by the test)');
          return n.uuid === nodes[1]!.uuid ? p2 : p3;
        },
        close: async () => {},
      },
    });
    schedulers.push(old);
    const statusOf = (s: ReplicationScheduler, node: number): ReplicaStatus | undefined => s.statuses().find((x) => x.replica === nodes[node]!.uuid);
    old.sync(view(id, 0, [1, 2]));
    await until('both replicas seeded', () => statusOf(old, 1)?.state === 'ok' && statusOf(old, 2)?.state === 'ok');

    // n2 cut off: n3 goes on receiving snapshots n2 never gets.
    n2Reachable = false;
    await writeFile(join(info.mountpoint!, 'b.txt'), 'while n2 was away\n');
    const guidsOf = async (s: ZfsStore): Promise<Set<string>> => new Set((await s.listSnapshots(id)).map((x) => x.guid));
    await until('n3 holds a snapshot n2 lacks', async () => {
      const [on2, on3] = [await guidsOf(s2), await guidsOf(s3)];
      return [...on3].some((g) => !on2.has(g));
    });

    // A large write, then the move begins while n3's step sending it runs.
    await writeRandom(join(info.mountpoint!, 'big.bin'), 48);
    const written = Date.now();
    await until('a step to n3 runs that began after the large write', () => (running.get(nodes[2]!.uuid)?.began ?? 0) > written, 60_000, 20);
    await systemClock.sleep(300); // into its stream
    const moving = [
      { id: randomUUID(), application: 'app', dataset_ids: [id], from: nodes[0]!.uuid, to: nodes[1]!.uuid, phase: 'pre-copy', generation: 1, started_at: Date.now(), updated_at: Date.now() } as Migration,
    ];
    const moveBegan = Date.now();
    old.sync(view(id, 0, [1, 2], moving));
    await old.beforeMove(id);
    const waitedMs = Date.now() - moveBegan;
    expect(running.size).toBe(0);
    const n3Step = ended.filter((e) => e.peer === nodes[2]!.uuid && e.at >= moveBegan);
    console.log(`move waited ${waitedMs} ms for the running step to n3 (${n3Step.map((e) => (e.ok ? 'it finished its receive' : 'it was cut short')).join(', ')})`);

    // The move (its pre-copy, then the final round after the last acknowledged write).
    n2Reachable = true;
    const round1 = await replicator.replicate(old.forMigration({ datasetId: id, peer: p2, allowRollback: true }));
    expect(round1.incremental).toBe(true);
    await writeFile(join(info.mountpoint!, 'c.txt'), 'the last write before the cutover\n');
    const acknowledged = await hashFiles(info.mountpoint!);
    await replicator.replicate(old.forMigration({ datasetId: id, peer: p2, allowRollback: true, prune: false }));
    // Nothing ran on the old primary's side during the move.
    expect(ended.filter((e) => e.at > moveBegan + waitedMs)).toEqual([]);

    // Every snapshot n3 holds is on the move's target: its newest is common with the new primary.
    const [on2, on3] = [await guidsOf(s2), await guidsOf(s3)];
    expect([...on3].filter((g) => !on2.has(g))).toEqual([]);
    const n3Newest = (await s3.listSnapshots(id)).at(-1)!;

    // Handoff: the old primary stops, n2 becomes primary (writable, mounted) with n3 its replica.
    old.sync(view(id, 1, [2]));
    await old.stop();
    zfsSet('readonly', 'off', `${s2.pool}/drover/${id}`);
    await s2.mount(id);
    const mountpoint = (await s2.getDataset(id))!.mountpoint!;
    expect(await hashFiles(mountpoint)).toEqual(acknowledged);

    const replicator2 = new Replicator({ store: s2, stateDir: stateDirs[1]!, retries: 0, stallMs: 60_000 });
    const p3b = await peer(2);
    const next = new ReplicationScheduler({
      nodeUuid: nodes[1]!.uuid,
      clock: systemClock,
      log: silentLogger(),
      store: s2,
      replicate: (o) => replicator2.replicate(o),
      settle: (p, d) => replicator2.settle(p, d),
      peers: { peerFor: async () => p3b, close: async () => {} },
    });
    schedulers.push(next);
    await writeFile(join(mountpoint, 'd.txt'), 'on the new primary\n');
    const after = await hashFiles(mountpoint);
    next.sync(view(id, 1, [2]));
    let first: ReplicaStatus | undefined;
    await until('n3 receives from the new primary', () => {
      first = statusOf(next, 2);
      if (first?.state === 'diverged') throw new Error(`n3 found diverged after the move: ${first.last_error?.message}`);
      return first?.state === 'ok';
    });
    // Incremental on n3's newest snapshot: it is still there, nothing rolled back or reseeded.
    await next.stop();
    console.log(`the new primary's first step to n3 sent ${first!.bytes_sent_total} bytes`);
    expect((await s3.listSnapshots(id)).some((x) => x.guid === n3Newest.guid)).toBe(true);
    expect(await replicaContents(s3, id)).toEqual(after);

    for (const s of [s1, s2, s3]) {
      for (const x of await s.listSnapshots(id)) await s.release(id, x.snapshot, 'drover-base');
      await s.destroyDataset(id);
    }
  }, 400_000);
  it('moves to a node with no copy so that the new primary replicates to the remaining replica incrementally', async () => {
    const id = randomUUID();
    const [s1, s2, s3] = stores as [ZfsStore, ZfsStore, ZfsStore];
    const info = await s1.createDataset(id, { maximumSize: null });
    await writeRandom(join(info.mountpoint!, 'data.bin'), 16);
    const [p2, p3] = [await peer(1), await peer(2)];
    const replicator = new Replicator({ store: s1, stateDir: stateDirs[0]!, retries: 0, stallMs: 60_000 });
    const old = new ReplicationScheduler({
      nodeUuid: nodes[0]!.uuid,
      clock: systemClock,
      log: silentLogger(),
      store: s1,
      replicate: (o) => replicator.replicate(o),
      settle: (p, d) => replicator.settle(p, d),
      peerSnapshots: (p, d) => replicator.peerSnapshots(p, d),
      peers: { peerFor: async (n): Promise<Peer> => (n.uuid === nodes[1]!.uuid ? p2 : p3), close: async () => {} },
    });
    schedulers.push(old);
    const statusOf = (s: ReplicationScheduler, n: number): ReplicaStatus | undefined => s.statuses().find((x) => x.replica === nodes[n]!.uuid);
    old.sync(view(id, 0, [1]));
    await until('n2 seeded', () => statusOf(old, 1)?.state === 'ok');
    await writeFile(join(info.mountpoint!, 'a.txt'), 'after the seed\n');
    const newest = statusOf(old, 1)!.newest_snapshot;
    await until('n2 received a later step', () => statusOf(old, 1)?.newest_snapshot !== newest);

    // The move to n3, wired as main.ts wires it; n3 holds nothing of the dataset.
    expect(await s3.getDataset(id)).toBeNull();
    const moveStep = new MoveStep({
      scheduler: old,
      replicate: (o) => replicator.replicate(o),
      peerSnapshots: (p, d) => replicator.peerSnapshots(p, d),
      store: s1,
      peers: { peerFor: async (n) => (n.uuid === nodes[1]!.uuid ? p2 : p3) },
      log: silentLogger(),
    });
    const m = { id: randomUUID(), application: 'app', dataset_ids: [id], from: nodes[0]!.uuid, to: nodes[2]!.uuid, phase: 'pre-copy', generation: 1, started_at: Date.now(), updated_at: Date.now() } as Migration;
    old.sync(view(id, 0, [1], [m]));
    const round1 = await moveStep.replicate({ datasetId: id, peer: p3, corr: m.id, allowRollback: true });
    await writeFile(join(info.mountpoint!, 'c.txt'), 'the last write before the cutover\n');
    const acknowledged = await hashFiles(info.mountpoint!);
    await moveStep.replicate({ datasetId: id, peer: p3, corr: m.id, allowRollback: true, prune: false });
    console.log(`the move to a node with no copy sent ${round1.bytes} bytes in its first round`);
    // n2's newest snapshot is on n3: the two share a base.
    const n2Newest = (await s2.listSnapshots(id)).at(-1)!;
    expect((await s3.listSnapshots(id)).map((x) => x.guid)).toContain(n2Newest.guid);

    // Handoff: n3 primary (writable, mounted) with n2 its replica; the old primary stops.
    old.sync(view(id, 2, [1]));
    await old.stop();
    zfsSet('readonly', 'off', `${s3.pool}/drover/${id}`);
    await s3.mount(id);
    const mountpoint = (await s3.getDataset(id))!.mountpoint!;
    expect(await hashFiles(mountpoint)).toEqual(acknowledged);
    await writeFile(join(mountpoint, 'd.txt'), 'on the new primary\n');
    const after = await hashFiles(mountpoint);

    const replicator3 = new Replicator({ store: s3, stateDir: stateDirs[1]!, retries: 0, stallMs: 60_000 });
    const p2b = await peer(1);
    const next = new ReplicationScheduler({
      nodeUuid: nodes[2]!.uuid,
      clock: systemClock,
      log: silentLogger(),
      store: s3,
      replicate: (o) => replicator3.replicate(o),
      settle: (p, d) => replicator3.settle(p, d),
      peerSnapshots: (p, d) => replicator3.peerSnapshots(p, d),
      peers: { peerFor: async () => p2b, close: async () => {} },
    });
    schedulers.push(next);
    next.sync(view(id, 2, [1]));
    let first: ReplicaStatus | undefined;
    await until('n2 receives from the new primary', () => {
      first = statusOf(next, 1);
      if (first?.state === 'diverged') throw new Error(`n2 found diverged after the move: ${first.last_error?.message}`);
      return first?.state === 'ok';
    });
    await next.stop();
    // One small incremental on n2's newest snapshot: nothing rolled back, set aside or reseeded.
    console.log(`the new primary's first step to n2 sent ${first!.bytes_sent_total} bytes (the dataset holds 16 MiB)`);
    expect(round1.bytes).toBeGreaterThan(16 * 1024 * 1024);
    expect(first!.bytes_sent_total).toBeLessThan(1024 * 1024);
    expect((await s2.listSnapshots(id)).some((x) => x.guid === n2Newest.guid)).toBe(true);
    expect(await replicaContents(s2, id)).toEqual(after);

    for (const s of [s1, s2, s3]) {
      for (const x of await s.listSnapshots(id)) await s.release(id, x.snapshot, 'drover-base');
      await s.destroyDataset(id);
    }
  }, 400_000);
});

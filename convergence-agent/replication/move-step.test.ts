import { describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import type { Node } from '#common/model.ts';
import { NODE_B, node } from '../testing/fixtures.ts';
import type { Peer, ReplicateOptions, ReplicateResult, TransferProgress } from '../transfer/types.ts';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';
import { MoveStep } from './move-step.ts';

const DS = 'dddddddd-0000-4000-8000-000000000001';
const NODE_C = '33333333-3333-4333-8333-333333333333';
const NODE_D = '44444444-4444-4444-8444-444444444444';
const snap = (i: number): ZfsSnapshotInfo => {
  const snapshot = `drover-20260101T00000${i}000Z-${i}`;
  return { name: `p/drover/${DS}@${snapshot}`, snapshot, guid: `g${i}`, createtxg: i, userrefs: 0 };
};
const [S1, S2, S3] = [snap(1), snap(2), snap(3)] as [ZfsSnapshotInfo, ZfsSnapshotInfo, ZfsSnapshotInfo];
const peer = (id: string): Peer => ({ id }) as Peer;

/**
 * A MoveStep over fakes: the primary holds S1..S3; `on` says what each node lists; `replicas`
 * what the scheduler knows of the dataset's replicas. replicate() answers at once, 1000 bytes
 * per snapshot it would carry.
 */
function world(opts: { on: Record<string, ZfsSnapshotInfo[] | Error>; replicas: Array<{ uuid: string; guids: ReadonlySet<string> | null }> | null }) {
  const calls: ReplicateOptions[] = [];
  const listed: string[] = [];
  const learned: Array<[string, string[]]> = [];
  const nodes = new Map<string, Node>([NODE_B, NODE_C].map((u) => [u, node(u)]));
  const step = new MoveStep({
    scheduler: {
      beforeMove: async () => {},
      forMigration: (o) => ({ ...o, intermediates: true }),
      replicasOf: () => opts.replicas?.map((r) => ({ ...r, node: nodes.get(r.uuid) ?? null })) ?? null,
      learned: (_id, replica, guids) => void learned.push([replica, [...guids]]),
    },
    replicate: async (o) => {
      calls.push(o);
      o.onProgress?.({ datasetId: o.datasetId, bytes: 500, elapsedMs: 1, bytesPerSecond: 0 });
      return { snapshot: o.snapshotName ?? 'drover-new', guid: 'gx', bytes: 1000, incremental: calls.length > 1, baseSnapshot: null, resumed: false } satisfies ReplicateResult;
    },
    peerSnapshots: async (p, id) => {
      expect(id).toBe(DS);
      listed.push(p.id);
      const answer = opts.on[p.id] ?? [];
      if (answer instanceof Error) throw answer;
      return answer;
    },
    store: { listSnapshots: async () => [S1, S2, S3] },
    peers: { peerFor: async (n) => peer(n.uuid) },
    log: silentLogger(),
  });
  return { step, calls, listed, learned };
}

describe('MoveStep', () => {
  it('sends the replicas’ base whole to a node with no copy, then the round -I from it, and counts both streams', async () => {
    const w = world({ on: { [NODE_D]: [], [NODE_B]: [S1, S2] }, replicas: [{ uuid: NODE_B, guids: new Set(['g1']) }] });
    const progress: TransferProgress[] = [];
    const result = await w.step.replicate({ datasetId: DS, peer: peer(NODE_D), corr: 'm1', allowRollback: true, onProgress: (p) => progress.push(p) });
    expect(w.calls).toHaveLength(2);
    // The base: B's newest, as listed now (not g1, as last seen), sent as it is, not pruned.
    expect(w.calls[0]).toMatchObject({ datasetId: DS, snapshotName: S2.snapshot, prune: false, corr: 'm1' });
    expect(w.calls[0]!.intermediates).toBeUndefined();
    expect(w.calls[0]!.allowRollback).toBeUndefined();
    // The round itself, as the scheduler made it (-I).
    expect(w.calls[1]).toMatchObject({ intermediates: true, allowRollback: true, corr: 'm1' });
    expect(w.calls[1]!.snapshotName).toBeUndefined();
    expect(result.bytes).toBe(2000);
    expect(progress.map((p) => p.bytes)).toEqual([500, 1500]);
    expect(w.learned).toEqual([[NODE_B, ['g1', 'g2']]]);
  });

  it('asks nothing more on the move’s next rounds or in its final send, which runs while the application is stopped', async () => {
    const w = world({ on: { [NODE_D]: [], [NODE_B]: [S2] }, replicas: [{ uuid: NODE_B, guids: null }] });
    await w.step.replicate({ datasetId: DS, peer: peer(NODE_D), corr: 'm1' });
    const listedAfterFirst = w.listed.length;
    await w.step.replicate({ datasetId: DS, peer: peer(NODE_D), corr: 'm1' });
    await w.step.replicate({ datasetId: DS, peer: peer(NODE_D), corr: 'm1', prune: false, deferSettle: true });
    expect(w.listed).toHaveLength(listedAfterFirst);
    expect(w.calls).toHaveLength(4);
    expect(w.calls.slice(2).every((c) => c.snapshotName === undefined)).toBe(true);
  });

  it('leaves a target that holds a copy, or a replica known to hold one, to the engine', async () => {
    const copy = world({ on: { [NODE_D]: [S1], [NODE_B]: [S2] }, replicas: [{ uuid: NODE_B, guids: new Set(['g2']) }] });
    await copy.step.replicate({ datasetId: DS, peer: peer(NODE_D), corr: 'm1' });
    expect(copy.calls).toHaveLength(1);
    expect(copy.listed).toEqual([NODE_D]);

    const replica = world({ on: {}, replicas: [{ uuid: NODE_B, guids: new Set(['g2']) }, { uuid: NODE_C, guids: new Set(['g1']) }] });
    await replica.step.replicate({ datasetId: DS, peer: peer(NODE_B), corr: 'm1' });
    expect(replica.calls).toHaveLength(1);
    expect(replica.listed).toEqual([]);
  });

  it('sends the move’s snapshot whole as before when no replica shares a snapshot with the primary, there is no other replica, or the dataset has no policy here', async () => {
    const diverged = world({ on: { [NODE_D]: [], [NODE_B]: [snap(9)] }, replicas: [{ uuid: NODE_B, guids: null }] });
    await diverged.step.replicate({ datasetId: DS, peer: peer(NODE_D), corr: 'm1' });
    expect(diverged.calls).toHaveLength(1);
    expect(diverged.calls[0]!.snapshotName).toBeUndefined();

    const alone = world({ on: {}, replicas: [] });
    await alone.step.replicate({ datasetId: DS, peer: peer(NODE_D), corr: 'm1' });
    expect(alone.calls).toHaveLength(1);
    expect(alone.listed).toEqual([]);

    const plain = world({ on: {}, replicas: null });
    await plain.step.replicate({ datasetId: DS, peer: peer(NODE_D), corr: 'm1' });
    expect(plain.calls).toHaveLength(1);
    expect(plain.listed).toEqual([]);
  });

  it('falls back on a replica’s last-seen snapshots when it cannot be listed', async () => {
    const w = world({ on: { [NODE_D]: [], [NODE_B]: new Error('unreachable') }, replicas: [{ uuid: NODE_B, guids: new Set(['g1']) }] });
    await w.step.replicate({ datasetId: DS, peer: peer(NODE_D), corr: 'm1' });
    expect(w.calls[0]).toMatchObject({ snapshotName: S1.snapshot });
  });

  it('fails the round when the target cannot be listed, so it is retried like any failed round', async () => {
    const w = world({ on: { [NODE_D]: new Error('connection refused') }, replicas: [{ uuid: NODE_B, guids: new Set(['g1']) }] });
    await expect(w.step.replicate({ datasetId: DS, peer: peer(NODE_D), corr: 'm1' })).rejects.toThrow(/connection refused/);
    expect(w.calls).toEqual([]);
  });
});

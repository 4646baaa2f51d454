/**
 * The receive's verdict names the snapshot received (docs/DESIGN.md §41), through the local
 * cluster's real OpenSSH servers, the agents' restricted key and drover-receive: the one-shot
 * verb (a whole send, and an increment opened ahead as a move's final send is) and the resident
 * verb (an increment). The step's guid check then asks the peer for no listing of its own. A
 * receiver that does not say (an older one) gets the listing, as before; and the check still
 * fails when the peer's listing lacks the guid.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ReceivedSnapshot } from '../../convergence-agent/transfer/received.ts';
import { Replicator } from '../../convergence-agent/transfer/replicate.ts';
import type { SshPeer } from '../../convergence-agent/transfer/ssh-peer.ts';
import type { Peer } from '../../convergence-agent/transfer/types.ts';
import type { ZfsSnapshotInfo } from '../../convergence-agent/zfs/types.ts';
import { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';
import { sshPeerFor, writeRandom } from './helpers.ts';

interface Seen {
  /** Each receive's verdict as the transport read it. */
  verdicts: (ReceivedSnapshot | null)[];
  /** Listings of the peer's snapshots asked once a stream had begun. */
  listedAfterStream: number;
}

/**
 * `inner`, with each step's receive verdict and its later listings recorded. `older`: the
 * verdict is passed on as an older drover-receive gives it (no snapshot); `listing` replaces
 * what the peer lists after the stream.
 */
function watched(inner: Peer, options: { older?: boolean; listing?: (real: ZfsSnapshotInfo[]) => ZfsSnapshotInfo[] } = {}): { peer: Peer; seen: Seen } {
  const seen: Seen = { verdicts: [], listedAfterStream: 0 };
  const peer: Peer = {
    id: inner.id,
    features: () => inner.features(),
    close: () => inner.close(),
    ...(inner.prepareReceive ? { prepareReceive: inner.prepareReceive.bind(inner) } : {}),
    beginStep: async (datasetId, o) => {
      const step = await inner.beginStep(datasetId, o);
      let streamed = false;
      const receive = step.receive.bind(step);
      const list = step.listSnapshots.bind(step);
      step.receive = (ro) => {
        const sink = receive(ro);
        streamed = true;
        const done = sink.done.then((r) => {
          seen.verdicts.push(r);
          return options.older ? null : r;
        });
        done.catch(() => {});
        return { ...sink, done };
      };
      step.listSnapshots = async () => {
        if (!streamed) return list();
        seen.listedAfterStream += 1;
        const real = await list();
        return options.listing ? options.listing(real) : real;
      };
      return step;
    },
  };
  return { peer, seen };
}

describeWith(['root', 'zfs', 'sshd'], "the received snapshot in the receive's verdict", () => {
  const cluster = useTestCluster({ nodes: 2, docker: false, ssh: true });
  let source: ZfsStore;
  let target: ZfsStore;
  let stateDir: string;
  const peers: SshPeer[] = [];

  beforeAll(async () => {
    source = new ZfsStore({ pool: cluster().nodes[0]!.pool });
    target = new ZfsStore({ pool: cluster().nodes[1]!.pool });
    stateDir = await mkdtemp(join(tmpdir(), 'drover-received-state-'));
  });

  afterAll(async () => {
    for (const p of peers) await p.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  const newest = async (store: ZfsStore, id: string) => {
    const s = (await store.listSnapshots(id)).at(-1)!;
    return { snapshot: s.snapshot, guid: s.guid };
  };

  it("names the snapshot the target's zfs holds after a whole send, a resident increment and an increment opened ahead, and the check lists nothing more", async () => {
    const ssh = await sshPeerFor(cluster(), cluster().nodes[1]!);
    peers.push(ssh);
    const { peer, seen } = watched(ssh);
    const replicator = new Replicator({ store: source, stateDir, retries: 0 });
    const id = randomUUID();
    const dir = (await source.createDataset(id, { maximumSize: null })).mountpoint!;
    await writeRandom(join(dir, 'a.bin'), 2);

    const whole = await replicator.replicate({ datasetId: id, peer, prune: false });
    expect(whole).toMatchObject({ incremental: false });
    await writeRandom(join(dir, 'b.bin'), 1);
    const resident = await replicator.replicate({ datasetId: id, peer, prune: false });
    expect(ssh.connection.residentSessions).toBe(1);
    await writeRandom(join(dir, 'c.bin'), 1);
    await replicator.prepareReceive(peer, id);
    const ahead = await replicator.replicate({ datasetId: id, peer, prune: false, deferSettle: true, skipHeldBaseHolds: true });
    await replicator.settle(peer, id);

    // Each verdict is what the target's own zfs lists, and the sender's snapshot.
    expect(seen.verdicts).toEqual([
      { snapshot: whole.snapshot, guid: whole.guid },
      { snapshot: resident.snapshot, guid: resident.guid },
      { snapshot: ahead.snapshot, guid: ahead.guid },
    ]);
    expect(seen.verdicts.at(-1)).toEqual(await newest(target, id));
    expect(await newest(source, id)).toEqual({ snapshot: ahead.snapshot, guid: ahead.guid });
    expect(seen.listedAfterStream).toBe(0);
  });

  it('lists the target once for a receiver that does not name the snapshot (an older one), and still refuses a guid the listing lacks', async () => {
    const ssh = await sshPeerFor(cluster(), cluster().nodes[1]!);
    peers.push(ssh);
    const replicator = new Replicator({ store: source, stateDir, retries: 0 });
    const id = randomUUID();
    const dir = (await source.createDataset(id, { maximumSize: null })).mountpoint!;
    await writeRandom(join(dir, 'a.bin'), 1);

    const older = watched(ssh, { older: true });
    const whole = await replicator.replicate({ datasetId: id, peer: older.peer, prune: false });
    await writeRandom(join(dir, 'b.bin'), 1);
    const next = await replicator.replicate({ datasetId: id, peer: older.peer, prune: false });
    expect(older.seen.listedAfterStream).toBe(2);
    expect((await target.listSnapshots(id)).map((s) => s.guid)).toEqual([whole.guid, next.guid]);

    // A receiver that names nothing and a listing without the guid: not verified, retryable.
    await writeRandom(join(dir, 'c.bin'), 1);
    const lying = watched(ssh, { older: true, listing: (real) => real.slice(0, -1) });
    await expect(replicator.replicate({ datasetId: id, peer: lying.peer, prune: false })).rejects.toMatchObject({ code: 'DROVER_TRANSFER_VERIFY_FAILED', retryable: true });
    expect(lying.seen.verdicts).toHaveLength(1);
    expect(lying.seen.verdicts[0]).not.toBeNull();
  });
});

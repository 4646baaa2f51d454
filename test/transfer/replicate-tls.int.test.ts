/**
 * The replication engine over the tls transport: node 2's TransferServer (its agent's
 * receiving side, mutual TLS with the cluster CA) and node 1's TlsPeer, on a local cluster.
 * Both have the native pump, so the stream takes the native data path; the last tests take
 * the in-process path an older or pump-less agent gets.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DroverError } from '#common/errors.ts';
import type { Peer } from '../../convergence-agent/transfer/types.ts';
import { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';
import { LocalPeer } from '../../convergence-agent/transfer/local-peer.ts';
import { Replicator } from '../../convergence-agent/transfer/replicate.ts';
import { ensureClusterCa, ensureNodeCertificate, type TlsIdentity } from '../../convergence-agent/transfer/tls-certs.ts';
import { TlsPeer } from '../../convergence-agent/transfer/tls-peer.ts';
import { TransferServer } from '../../convergence-agent/transfer/tls-server.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';
import { TcpCutter, hashFiles, replicaContents, writeRandom, zfsGetNumber, zfsSet } from './helpers.ts';

describeWith(['root', 'zfs', 'native-pump'], 'replication over tls', () => {
  const cluster = useTestCluster({ nodes: 2, docker: false, ssh: false });
  let dir: string;
  let source: ZfsStore;
  let target: ZfsStore;
  let server: TransferServer;
  let port: number;
  let sender: TlsIdentity;
  let peer: TlsPeer;
  let replicator: Replicator;

  beforeAll(async () => {
    const [n1, n2] = cluster().nodes;
    dir = await mkdtemp(join(tmpdir(), 'drover-tls-test-'));
    const ca = { certPath: cluster().ca.certPath, keyPath: cluster().ca.keyPath };
    sender = await ensureNodeCertificate({ ca, dir: join(dir, 'n1'), commonName: n1!.uuid, address: n1!.address });
    const receiver = await ensureNodeCertificate({ ca, dir: join(dir, 'n2'), commonName: n2!.uuid, address: n2!.address });
    source = new ZfsStore({ pool: n1!.pool });
    target = new ZfsStore({ pool: n2!.pool });
    server = new TransferServer({ peer: new LocalPeer(n2!.uuid, target), identity: receiver, host: n2!.address, port: 0 });
    port = (await server.listen()).port;
    peer = new TlsPeer({ id: n2!.uuid, host: n2!.address, port, identity: sender });
    replicator = new Replicator({ store: source, stateDir: join(dir, 'state'), stallMs: 30_000 });
  });

  afterAll(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function datasetWith(mib: number): Promise<{ id: string; dir: string }> {
    const id = randomUUID();
    const info = await source.createDataset(id, { maximumSize: null });
    await writeRandom(join(info.mountpoint!, 'data.bin'), mib);
    return { id, dir: info.mountpoint! };
  }

  it('sends a full stream then increments, and the replica matches the source by guid and content', async () => {
    const { id, dir: data } = await datasetWith(8);
    const full = await replicator.replicate({ datasetId: id, peer });
    expect(full).toMatchObject({ incremental: false, dataPath: 'native' });
    await writeFile(join(data, 'note.txt'), 'written after the first send\n');
    const next = await replicator.replicate({ datasetId: id, peer });
    expect(next).toMatchObject({ incremental: true, baseSnapshot: full.snapshot, dataPath: 'native' });
    expect((await target.listSnapshots(id)).at(-1)!.guid).toBe((await source.listSnapshots(id)).at(-1)!.guid);
    expect(await target.getDataset(id)).toMatchObject({ readonly: true, mounted: false });
    expect(await replicaContents(target, id)).toEqual(await hashFiles(data));
  });

  it('leaves the target at its previous snapshot when the connection is cut mid-stream, and a retry succeeds', async () => {
    const { id, dir: data } = await datasetWith(1);
    const first = await replicator.replicate({ datasetId: id, peer });
    await writeRandom(join(data, 'more.bin'), 48);
    const n2 = cluster().nodes[1]!;
    const cutter = new TcpCutter();
    try {
      // Bound on node 2's own address: the receiver's certificate names that address.
      const cutPort = await cutter.listen(n2.address, port, n2.address);
      const cutPeer = new TlsPeer({ id: `${n2.uuid}-cut`, host: n2.address, port: cutPort, identity: sender });
      const once = new Replicator({ store: source, stateDir: join(dir, 'state'), retries: 0 });
      // Cut by bytes relayed, not by a progress report: the native path can finish 48 MiB
      // between two reports.
      cutter.cutAfterBytes = 4 << 20;
      const failed = await once.replicate({ datasetId: id, peer: cutPeer }).catch((err: unknown) => err);
      expect(cutter.cutAfterBytes).toBeNull();
      expect(failed).toMatchObject({ retryable: true });
      expect((await target.listSnapshots(id)).map((s) => s.snapshot)).toEqual([first.snapshot]);
      const retried = await once.replicate({ datasetId: id, peer: cutPeer });
      expect(retried).toMatchObject({ incremental: true, baseSnapshot: first.snapshot });
      expect((await target.listSnapshots(id)).at(-1)!.guid).toBe((await source.listSnapshots(id)).at(-1)!.guid);
    } finally {
      await cutter.close();
    }
  });

  it('reports a full target pool as zfs said it (not as the pump\'s broken pipe) and leaves the source as it was', async () => {
    const { id, dir: data } = await datasetWith(24);
    const before = await hashFiles(data);
    const n2 = cluster().nodes[1]!;
    // The target's drover root gets room for 8 MiB more: the 24 MiB stream cannot fit.
    zfsSet('quota', String(zfsGetNumber('used', `${n2.pool}/drover`) + (8 << 20)), `${n2.pool}/drover`);
    try {
      const failed = await replicator.replicate({ datasetId: id, peer }).catch((err: unknown) => err);
      expect(failed).toMatchObject({ code: 'DROVER_ZFS_NO_SPACE', retryable: false });
    } finally {
      zfsSet('quota', 'none', `${n2.pool}/drover`);
    }
    expect(await source.listSnapshots(id)).toEqual([]);
    expect(await hashFiles(data)).toEqual(before);
    expect(await target.getDataset(id)).toBeNull();
  });

  it('removes the snapshot its first attempt took when the retry fails for good', async () => {
    const { id } = await datasetWith(24);
    const n2 = cluster().nodes[1]!;
    // The first attempt's stream is cut (retryable); the retry meets a full pool (permanent).
    let cuts = 0;
    const flaky: Peer = {
      id: peer.id,
      features: () => peer.features(),
      close: () => peer.close(),
      beginStep: async (datasetId, options) => {
        const step = await peer.beginStep(datasetId, options);
        if (cuts > 0) return step;
        cuts++;
        const receive = step.receive.bind(step);
        step.receive = (o) => {
          const sink = receive(o);
          setTimeout(() => sink.abort(new DroverError('DROVER_TRANSFER_INTERRUPTED', 'cut by the test', { retryable: true })), 50);
          return sink;
        };
        return step;
      },
    };
    zfsSet('quota', String(zfsGetNumber('used', `${n2.pool}/drover`) + (8 << 20)), `${n2.pool}/drover`);
    try {
      await expect(replicator.replicate({ datasetId: id, peer: flaky })).rejects.toMatchObject({ code: 'DROVER_ZFS_NO_SPACE' });
    } finally {
      zfsSet('quota', 'none', `${n2.pool}/drover`);
    }
    expect(cuts).toBe(1);
    expect(await source.listSnapshots(id)).toEqual([]);
  });

  it('serializes two senders of one dataset on the receiving agent', async () => {
    const { id } = await datasetWith(4);
    const n2 = cluster().nodes[1]!;
    // Two agents (own locks, own journals) sending the same dataset to the same receiver.
    const agents = ['a', 'b'].map(
      (name) => new Replicator({ store: source, stateDir: join(dir, `state-${name}`) }),
    );
    const results = await Promise.all(
      agents.map((agent) => agent.replicate({ datasetId: id, peer: new TlsPeer({ id: n2.uuid, host: n2.address, port, identity: sender }) })),
    );
    const [first, second] = results[0]!.incremental ? [results[1]!, results[0]!] : [results[0]!, results[1]!];
    expect(first.incremental).toBe(false);
    expect(second).toMatchObject({ incremental: true, baseSnapshot: first.snapshot });
    expect((await target.listSnapshots(id)).map((s) => s.snapshot)).toEqual([first.snapshot, second.snapshot]);
  });

  it('streams in-process to a receiver without the native pump (an older agent) and to one from a sender without it', async () => {
    const n2 = cluster().nodes[1]!;
    const { id, dir: data } = await datasetWith(4);
    const receiver = await ensureNodeCertificate({ ca: { certPath: cluster().ca.certPath, keyPath: cluster().ca.keyPath }, dir: join(dir, 'n2'), commonName: n2.uuid, address: n2.address });
    const plain = new TransferServer({ peer: new LocalPeer(n2.uuid, target), identity: receiver, host: n2.address, port: 0, pump: null });
    const plainPort = (await plain.listen()).port;
    try {
      const toPlain = new TlsPeer({ id: `${n2.uuid}-plain`, host: n2.address, port: plainPort, identity: sender });
      const full = await replicator.replicate({ datasetId: id, peer: toPlain });
      expect(full).toMatchObject({ incremental: false, dataPath: 'in-process' });
      await writeFile(join(data, 'more.txt'), 'second\n');
      const pumpless = new TlsPeer({ id: n2.uuid, host: n2.address, port, identity: sender, pump: null });
      const next = await replicator.replicate({ datasetId: id, peer: pumpless });
      expect(next).toMatchObject({ incremental: true, baseSnapshot: full.snapshot, dataPath: 'in-process' });
      expect((await target.listSnapshots(id)).at(-1)!.guid).toBe((await source.listSnapshots(id)).at(-1)!.guid);
      expect(await replicaContents(target, id)).toEqual(await hashFiles(data));
    } finally {
      await plain.close();
    }
  });

  it('drops a data connection whose hello names no channel it opened, and goes on serving', async () => {
    const n2 = cluster().nodes[1]!;
    const forged = netConnect(port, n2.address);
    await once(forged, 'connect');
    forged.on('error', () => {});
    forged.write(Buffer.concat([Buffer.from('DRVRDAT1'), Buffer.alloc(48, 7)]));
    const received: Buffer[] = [];
    forged.on('data', (d: Buffer) => received.push(d));
    await once(forged, 'close');
    expect(Buffer.concat(received).length).toBe(0); // no acknowledgement: nothing was attached
    const { id } = await datasetWith(1);
    expect(await replicator.replicate({ datasetId: id, peer })).toMatchObject({ dataPath: 'native' });
  });

  it('refuses a sender whose certificate is not signed by the cluster CA', async () => {
    const n1 = cluster().nodes[0]!;
    const n2 = cluster().nodes[1]!;
    const otherCa = await ensureClusterCa(join(dir, 'other-ca'));
    const stranger = await ensureNodeCertificate({ ca: otherCa, dir: join(dir, 'stranger'), commonName: n1.uuid, address: n1.address });
    const strangerPeer = new TlsPeer({ id: `${n2.uuid}-stranger`, host: n2.address, port, identity: { ...stranger, ca: sender.ca } });
    await expect(strangerPeer.features()).rejects.toMatchObject({ code: expect.stringMatching(/^DROVER_(TLS_CONNECT_FAILED|TLS_REJECTED)$/) });
    const { id } = await datasetWith(1);
    await expect(new Replicator({ store: source, stateDir: join(dir, 'state-stranger'), retries: 0 }).replicate({ datasetId: id, peer: strangerPeer })).rejects.toBeDefined();
    expect(await target.getDataset(id)).toBeNull();
  });
});

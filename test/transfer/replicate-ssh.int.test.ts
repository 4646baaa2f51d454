/**
 * The replication engine over the ssh transport, between two nodes of a local cluster:
 * real zfs-fuse pools, real OpenSSH servers (docs/DESIGN.md §5–§7).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import { RecordingRunner, execaRunner } from '../../convergence-agent/zfs/command.ts';
import { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';
import { Replicator } from '../../convergence-agent/transfer/replicate.ts';
import { newSnapshotName } from '../../convergence-agent/transfer/snapshot-name.ts';
import { argv } from '../../convergence-agent/zfs/argv.ts';
import type { SshPeer } from '../../convergence-agent/transfer/ssh-peer.ts';
import type { Peer, PeerStep } from '../../convergence-agent/transfer/types.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';
import { RecordingPeer, TcpCutter, hashFiles, replicaContents, sshPeerFor, writeRandom, zfsGetNumber, zfsSet } from './helpers.ts';

describeWith(['root', 'zfs', 'sshd'], 'replication over ssh', () => {
  const cluster = useTestCluster({ nodes: 2, docker: false, ssh: true });
  let source: ZfsStore;
  let target: ZfsStore;
  let stateDir: string;
  let peer: SshPeer;
  let replicator: Replicator;
  const peers: SshPeer[] = [];
  // What the replicator logged, shown when a step does not finish in time (a CI run once hung here).
  const logLines: string[] = [];

  beforeAll(async () => {
    const [n1, n2] = cluster().nodes;
    source = new ZfsStore({ pool: n1!.pool });
    target = new ZfsStore({ pool: n2!.pool });
    stateDir = await mkdtemp(join(tmpdir(), 'drover-transfer-state-'));
    peer = await sshPeerFor(cluster(), n2!);
    peers.push(peer);
    replicator = new Replicator({ store: source, stateDir, stallMs: 30_000, log: pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line.trimEnd()) }) });
  });

  afterAll(async () => {
    for (const p of peers) await p.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  async function datasetWith(mib: number): Promise<{ id: string; dir: string }> {
    const id = randomUUID();
    const info = await source.createDataset(id, { maximumSize: null });
    await writeRandom(join(info.mountpoint!, 'data.bin'), mib);
    return { id, dir: info.mountpoint! };
  }

  it('sends a full stream then an incremental chain, leaving an identical read-only replica', async () => {
    const { id, dir } = await datasetWith(8);
    const full = await replicator.replicate({ datasetId: id, peer });
    expect(full).toMatchObject({ incremental: false, baseSnapshot: null });
    expect(full.bytes).toBeGreaterThan(8 << 20);

    let previous = full.snapshot;
    for (let round = 1; round <= 3; round++) {
      await writeFile(join(dir, `round-${round}.txt`), `round ${round}\n`.repeat(1000 * round));
      const step = await replicator.replicate({ datasetId: id, peer });
      expect(step).toMatchObject({ incremental: true, baseSnapshot: previous });
      expect(step.bytes).toBeLessThan(full.bytes / 4);
      previous = step.snapshot;
    }

    const sourceLatest = (await source.listSnapshots(id)).at(-1)!;
    const targetLatest = (await target.listSnapshots(id)).at(-1)!;
    expect(targetLatest.guid).toBe(sourceLatest.guid);
    expect(targetLatest.snapshot).toBe(previous);
    expect(await target.getDataset(id)).toMatchObject({ readonly: true, mounted: false });
    // Only drover-base holds remain, one per side, on the newest snapshot.
    expect((await source.listSnapshots(id)).map((s) => s.userrefs)).toEqual([...Array((await source.listSnapshots(id)).length - 1).fill(0), 1]);
    expect(targetLatest.userrefs).toBe(1);
    expect(await replicaContents(target, id)).toEqual(await hashFiles(dir));
  });

  it('refuses a diverged replica, naming both snapshots, and rolls it back only when allowed', async () => {
    const { id } = await datasetWith(1);
    const first = await replicator.replicate({ datasetId: id, peer });
    await target.createSnapshot(id, 'drover-rogue');

    const refused = await replicator.replicate({ datasetId: id, peer }).catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: 'DROVER_ZFS_DIVERGED', retryable: false });
    expect((refused as Error).message).toContain('drover-rogue');
    expect((refused as Error).message).toContain(first.snapshot);
    // The refused step took nothing away and left nothing behind on the source.
    expect((await source.listSnapshots(id)).map((s) => s.snapshot)).toEqual([first.snapshot]);

    const rolled = await replicator.replicate({ datasetId: id, peer, allowRollback: true });
    expect(rolled).toMatchObject({ incremental: true, baseSnapshot: first.snapshot });
    expect((await target.listSnapshots(id)).map((s) => s.snapshot)).toEqual([first.snapshot, rolled.snapshot]);
  });

  it('sets a diverged read-only replica aside whole when a move asks, sends the dataset whole, and never sets aside a writable one', async () => {
    const { id, dir } = await datasetWith(1);
    const first = await replicator.replicate({ datasetId: id, peer });
    // Written outside drover since its newest snapshot: the increment plans, zfs receive refuses it.
    const name = `${target.pool}/drover/${id}`;
    zfsSet('readonly', 'off', name);
    await target.mount(id);
    await writeFile(join((await target.getDataset(id))!.mountpoint!, 'outside.txt'), 'written by hand\n');
    await target.unmount(id);
    await writeFile(join(dir, 'more.txt'), 'more\n');
    const keptHere = async () => (await target.listDiverged()).filter((c) => c.datasetId === id);

    // Writable in drover's books (a primary's live data, not a replica): refused, nothing moved.
    await target.setReadonly(id, false);
    expect(await replicator.replicate({ datasetId: id, peer, setAsideDiverged: 5 }).catch((err: unknown) => err)).toMatchObject({ code: 'DROVER_TRANSFER_TARGET_WRITABLE' });
    expect(await keptHere()).toEqual([]);

    await target.setReadonly(id, true);
    const moved = await replicator.replicate({ datasetId: id, peer, setAsideDiverged: 5 });
    const kept = `${target.pool}/drover-diverged/${id}-g5`;
    expect(moved).toMatchObject({ incremental: false, setAside: kept });
    expect(await replicaContents(target, id)).toEqual(await hashFiles(dir));
    expect(await keptHere()).toMatchObject([{ name: kept, generation: 5 }]);
    // The kept copy is whole: its snapshot and the hand-written file, unmounted and read-only.
    const get = (prop: string) => spawnSync('zfs', ['get', '-H', '-o', 'value', prop, kept], { encoding: 'utf8' }).stdout.trim();
    expect([get('readonly'), get('mountpoint')]).toEqual(['on', 'none']);
    expect(spawnSync('zfs', ['list', '-H', '-o', 'name', '-t', 'snapshot', '-r', kept], { encoding: 'utf8' }).stdout.trim()).toBe(`${kept}@${first.snapshot}`);
    const look = await mkdtemp(join(tmpdir(), 'drover-kept-'));
    try {
      zfsSet('mountpoint', look, kept);
      spawnSync('zfs', ['mount', kept]);
      expect(readFileSync(join(look, 'outside.txt'), 'utf8')).toBe('written by hand\n');
    } finally {
      spawnSync('zfs', ['umount', kept]);
      zfsSet('mountpoint', 'none', kept);
      await rm(look, { recursive: true, force: true });
    }

    // Diverged again, under the same generation: refused, the copy stays where it is.
    await target.createSnapshot(id, 'drover-rogue');
    expect(await replicator.replicate({ datasetId: id, peer, setAsideDiverged: 5 }).catch((err: unknown) => err)).toMatchObject({ code: 'DROVER_ZFS_EXISTS' });
    expect((await target.listSnapshots(id)).map((s) => s.snapshot)).toContain('drover-rogue');
  });

  it('leaves the target at its previous snapshot when the connection is cut mid-stream, and a retry succeeds', async () => {
    const { id, dir } = await datasetWith(1);
    const first = await replicator.replicate({ datasetId: id, peer });
    await writeRandom(join(dir, 'more.bin'), 48);

    const n2 = cluster().nodes[1]!;
    const cutter = new TcpCutter();
    const port = await cutter.listen(n2.ssh!.host, n2.ssh!.port);
    const cutPeer = await sshPeerFor(cluster(), n2, { host: '127.0.0.1', port, id: `${n2.uuid}-cut` });
    peers.push(cutPeer);
    const once = new Replicator({ store: source, stateDir, retries: 0 });
    let cut = false;
    const failed = await once
      .replicate({
        datasetId: id,
        peer: cutPeer,
        onProgress: (p) => {
          if (!cut && p.bytes > 4 << 20) {
            cut = true;
            cutter.cut();
          }
        },
      })
      .catch((err: unknown) => err);
    expect(cut).toBe(true);
    expect(failed).toMatchObject({ retryable: true });
    expect((await target.listSnapshots(id)).map((s) => s.snapshot)).toEqual([first.snapshot]);

    const retried = await once.replicate({ datasetId: id, peer: cutPeer });
    expect(retried).toMatchObject({ incremental: true, baseSnapshot: first.snapshot, resumed: true });
    expect((await target.listSnapshots(id)).at(-1)!.guid).toBe((await source.listSnapshots(id)).at(-1)!.guid);
    await cutter.close();
  });

  it('finishes the step of a sender killed mid-stream, from its journal', async () => {
    const { id } = await datasetWith(64);
    const n1 = cluster().nodes[0]!;
    const n2 = cluster().nodes[1]!;
    const config = {
      pool: n1.pool,
      stateDir,
      datasetId: id,
      peer: { ...n2.ssh!, id: n2.uuid, keyPath: cluster().sshClientKey.privateKeyPath, pool: n2.pool },
    };
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'replicate-child.ts'), JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let killedAt = 0;
    for await (const line of createInterface({ input: child.stdout! })) {
      const bytes = Number(/^progress (\d+)/.exec(line)?.[1] ?? 0);
      if (bytes > 2 << 20) {
        killedAt = bytes;
        child.kill('SIGKILL');
        break;
      }
      if (line.startsWith('done')) break;
    }
    await exited;
    expect(killedAt).toBeGreaterThan(0);
    // The dead sender's receive never completes: no snapshot arrives on the target. Its orphan
    // `zfs recv` may still be ending there, so the partial dataset can vanish between two reads.
    const arrived = await target.listSnapshots(id).catch((err: unknown) => {
      if ((err as { code?: string }).code === 'DROVER_DATASET_NOT_FOUND') return [];
      throw err;
    });
    expect(arrived).toEqual([]);

    logLines.length = 0;
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      replicator.replicate({ datasetId: id, peer }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const zfs = spawnSync('pgrep', ['-a', 'zfs'], { encoding: 'utf8' }).stdout;
          reject(new Error(`the recovering step did not finish in 90 s\nreplicator log:\n${logLines.join('\n')}\nzfs processes:\n${zfs}`));
        }, 90_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect(finished).toMatchObject({ resumed: true, incremental: false });
    const sourceSnaps = await source.listSnapshots(id);
    expect(sourceSnaps.map((s) => s.snapshot)).toEqual([finished.snapshot]);
    expect((await target.listSnapshots(id)).map((s) => s.guid)).toEqual([sourceSnaps[0]!.guid]);
    // The dead step's step holds are gone: one drover-base hold per side.
    expect(sourceSnaps[0]!.userrefs).toBe(1);
    expect((await target.listSnapshots(id))[0]!.userrefs).toBe(1);
  });

  it('reports a full target pool clearly and leaves the source as it was', async () => {
    const { id, dir } = await datasetWith(24);
    const before = await hashFiles(dir);
    const n2 = cluster().nodes[1]!;
    // The target's drover root gets room for 8 MiB more: the 24 MiB stream cannot fit.
    zfsSet('quota', String(zfsGetNumber('used', `${n2.pool}/drover`) + (8 << 20)), `${n2.pool}/drover`);
    try {
      const failed = await replicator.replicate({ datasetId: id, peer }).catch((err: unknown) => err);
      expect(failed).toMatchObject({ code: 'DROVER_ZFS_NO_SPACE', retryable: false });
      expect((failed as Error).message).toMatch(/space|quota/i);
    } finally {
      zfsSet('quota', 'none', `${n2.pool}/drover`);
    }
    expect(await source.listSnapshots(id)).toEqual([]);
    expect(await source.getDataset(id)).toMatchObject({ readonly: false, mounted: true });
    expect(await hashFiles(dir)).toEqual(before);
    expect(await target.getDataset(id)).toBeNull();
  });

  /** What `zfs receive` would get through the same warm shell: F_GETPIPE_SZ (1032) of its stdin. */
  async function remoteStdinPipeBytes(): Promise<number> {
    const channel = await peer.connection.stream(['perl', '-e', 'print fcntl(STDIN, 1032, 0)']);
    let out = '';
    channel.on('data', (d: Buffer) => (out += d.toString()));
    channel.resume();
    channel.end();
    await once(channel, 'close');
    return Number(out);
  }
  // Root may pass fs.pipe-max-size only with CAP_SYS_RESOURCE (bit 24), which a container lacks.
  const capSysResource = (BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`) >> 24n) & 1n;

  it('gives the remote receive a 1 MiB stdin pipe, not sshd\'s 64 KiB one', async () => {
    expect(await remoteStdinPipeBytes()).toBe(1 << 20);
  });

  it('falls back to the host\'s pipe-max-size when the kernel refuses 1 MiB', async () => {
    const limit = readFileSync('/proc/sys/fs/pipe-max-size', 'utf8');
    writeFileSync('/proc/sys/fs/pipe-max-size', String(512 << 10));
    try {
      peer.connection.close(); // a fresh warm shell
      expect(await remoteStdinPipeBytes()).toBe(capSysResource ? 1 << 20 : 512 << 10);
    } finally {
      writeFileSync('/proc/sys/fs/pipe-max-size', limit);
    }
  });

  it('rejects invalid names before any command runs, here or on the peer', async () => {
    const runner = new RecordingRunner(execaRunner);
    const recorded = new Replicator({ store: new ZfsStore({ pool: cluster().nodes[0]!.pool, runner }), stateDir });
    const recordingPeer = new RecordingPeer(peer);
    for (const bad of [{ datasetId: 'x; reboot' }, { datasetId: randomUUID(), snapshotName: 'drover-$(id)' }, { datasetId: randomUUID(), snapshotName: 'manual' }]) {
      await expect(recorded.replicate({ ...bad, peer: recordingPeer })).rejects.toMatchObject({ code: 'DROVER_ZFS_INVALID_NAME' });
    }
    expect(runner.calls).toEqual([]);
    expect(recordingPeer.begun).toEqual([]);
  });

  it('defers a final step\'s hold settling to settle(), and a step that never settled is finished by the next one', async () => {
    const { id, dir } = await datasetWith(2);
    const first = await replicator.replicate({ datasetId: id, peer });
    await writeFile(join(dir, 'final.txt'), 'final\n');
    const final = await replicator.replicate({ datasetId: id, peer, deferSettle: true, prune: false });
    expect(final).toMatchObject({ incremental: true, baseSnapshot: first.snapshot });
    // Arrived, but the old snapshot still carries its base and step holds on both sides.
    const holds = async () => ({
      source: (await source.listSnapshots(id)).map((s) => [s.snapshot, s.userrefs]),
      target: (await target.listSnapshots(id)).map((s) => [s.snapshot, s.userrefs]),
    });
    expect(await holds()).toEqual({ source: [[first.snapshot, 2], [final.snapshot, 0]], target: [[first.snapshot, 2], [final.snapshot, 0]] });
    await replicator.settle(peer, id);
    expect(await holds()).toEqual({ source: [[first.snapshot, 0], [final.snapshot, 1]], target: [[first.snapshot, 0], [final.snapshot, 1]] });
    await replicator.settle(peer, id); // nothing left to do

    // Not settled at all (the agent died after handoff): the next call finds it in the journal
    // and finishes it (as it does a killed sender's step that had arrived); the one after goes on from it.
    await writeFile(join(dir, 'again.txt'), 'again\n');
    const unsettled = await replicator.replicate({ datasetId: id, peer, deferSettle: true, prune: false });
    expect(await replicator.replicate({ datasetId: id, peer })).toMatchObject({ snapshot: unsettled.snapshot, resumed: true });
    const next = await replicator.replicate({ datasetId: id, peer });
    expect(next).toMatchObject({ incremental: true, baseSnapshot: unsettled.snapshot });
    expect((await target.listSnapshots(id)).find((s) => s.snapshot === next.snapshot)?.userrefs).toBe(1);
    expect((await target.listSnapshots(id)).filter((s) => s.userrefs > 0)).toHaveLength(1);
  });

  it('takes no step holds in a final step whose base both sides hold already, and settles it the same; holds one either side lacks', async () => {
    const { id, dir } = await datasetWith(2);
    const first = await replicator.replicate({ datasetId: id, peer });
    await writeFile(join(dir, 'final.txt'), 'final\n');
    const final = await replicator.replicate({ datasetId: id, peer, deferSettle: true, prune: false, skipHeldBaseHolds: true });
    expect(final).toMatchObject({ incremental: true, baseSnapshot: first.snapshot });
    const holds = async () => ({
      source: (await source.listSnapshots(id)).map((s) => [s.snapshot, s.userrefs]),
      target: (await target.listSnapshots(id)).map((s) => [s.snapshot, s.userrefs]),
    });
    // Only the base hold of the step that made it the base: no drover-step on either side.
    expect(await holds()).toEqual({ source: [[first.snapshot, 1], [final.snapshot, 0]], target: [[first.snapshot, 1], [final.snapshot, 0]] });
    await replicator.settle(peer, id);
    expect(await holds()).toEqual({ source: [[first.snapshot, 0], [final.snapshot, 1]], target: [[first.snapshot, 0], [final.snapshot, 1]] });

    // The target's base hold gone (by hand): the step holds its base on both sides, as always.
    await target.release(id, final.snapshot, 'drover-base');
    await writeFile(join(dir, 'again.txt'), 'again\n');
    const next = await replicator.replicate({ datasetId: id, peer, deferSettle: true, prune: false, skipHeldBaseHolds: true });
    expect(await holds()).toEqual({ source: [[first.snapshot, 0], [final.snapshot, 2], [next.snapshot, 0]], target: [[first.snapshot, 0], [final.snapshot, 1], [next.snapshot, 0]] });
    await replicator.settle(peer, id);
  });

  it("answers getState on the peer's real drover-receive as getDataset and listSnapshots do, in one request", async () => {
    const { id } = await datasetWith(1);
    const pool = cluster().nodes[1]!.pool;
    const ask = (op: string, datasetId = id) => peer.connection.request({ op, pool, datasetId });
    // No copy there yet: null and [].
    expect(await ask('getState')).toEqual({ dataset: null, snapshots: [] });
    await replicator.replicate({ datasetId: id, peer });
    const state = (await ask('getState')) as { dataset: { readonly: boolean } | null; snapshots: unknown[] };
    expect(state).toEqual({ dataset: await ask('getDataset'), snapshots: await ask('listSnapshots') });
    expect(state.dataset?.readonly).toBe(true);
    expect(state.snapshots).toHaveLength(1);
    // Refused like every request naming another pool or a path outside drover/.
    await expect(peer.connection.request({ op: 'getState', pool: 'elsewhere', datasetId: id })).rejects.toMatchObject({ code: 'DROVER_SSH_RECEIVE_REFUSED' });
    await expect(ask('getState', '../../etc')).rejects.toMatchObject({ code: expect.stringMatching(/DROVER_SSH_RECEIVE_REFUSED|DROVER_ZFS_INVALID_NAME/) });
  });

  it('takes no step holds on the base its caller names as held (heldBase), settles by moving the base tags only, and holds any other base as always', async () => {
    const { id, dir } = await datasetWith(2);
    const runner = new RecordingRunner(execaRunner);
    const recorded = new Replicator({ store: new ZfsStore({ pool: cluster().nodes[0]!.pool, runner }), stateDir });
    // The peer's holds and releases, as the engine asks them (each one a zfs command there).
    const remote: string[] = [];
    const watched: Peer = {
      id: peer.id,
      features: () => peer.features(),
      close: async () => {},
      beginStep: async (datasetId, options) => {
        const step = await peer.beginStep(datasetId, options);
        return Object.assign(Object.create(step) as PeerStep, {
          hold: (snapshot: string, tag: string) => (remote.push(`hold ${tag}`), step.hold(snapshot, tag)),
          release: (snapshot: string, tag: string) => (remote.push(`release ${tag}`), step.release(snapshot, tag)),
        });
      },
    };
    const local = (): string[] => runner.calls.filter((c) => c.args[0] === 'hold' || c.args[0] === 'release').map((c) => `${c.args[0]} ${c.args[1]}`);
    const holds = async () => ({
      source: (await source.listSnapshots(id)).map((s) => [s.snapshot, s.userrefs]),
      target: (await target.listSnapshots(id)).map((s) => [s.snapshot, s.userrefs]),
    });
    const first = await recorded.replicate({ datasetId: id, peer: watched });
    await writeFile(join(dir, 'next.txt'), 'next\n');
    runner.calls.length = 0;
    remote.length = 0;
    const next = await recorded.replicate({ datasetId: id, peer: watched, deferSettle: true, prune: false, heldBase: first.snapshot });
    expect(next).toMatchObject({ incremental: true, baseSnapshot: first.snapshot });
    expect(await holds()).toEqual({ source: [[first.snapshot, 1], [next.snapshot, 0]], target: [[first.snapshot, 1], [next.snapshot, 0]] });
    await recorded.settle(watched, id);
    // Two zfs commands a side for the step's holds: the base tag moved, no step tag held or released.
    expect(local()).toEqual(['hold drover-base', 'release drover-base']);
    expect(remote).toEqual(['hold drover-base', 'release drover-base']);
    expect(await holds()).toEqual({ source: [[first.snapshot, 0], [next.snapshot, 1]], target: [[first.snapshot, 0], [next.snapshot, 1]] });

    // A stale heldBase (not this step's base): the step holds its base on both sides, as always.
    await writeFile(join(dir, 'again.txt'), 'again\n');
    runner.calls.length = 0;
    remote.length = 0;
    const again = await recorded.replicate({ datasetId: id, peer: watched, deferSettle: true, prune: false, heldBase: first.snapshot });
    expect(again).toMatchObject({ incremental: true, baseSnapshot: next.snapshot });
    expect(await holds()).toEqual({ source: [[first.snapshot, 0], [next.snapshot, 2], [again.snapshot, 0]], target: [[first.snapshot, 0], [next.snapshot, 2], [again.snapshot, 0]] });
    await recorded.settle(watched, id);
    expect(local().sort()).toEqual(['hold drover-base', 'hold drover-step', 'release drover-base', 'release drover-step']);
    expect(remote.sort()).toEqual(['hold drover-base', 'hold drover-step', 'release drover-base', 'release drover-step']);
    expect(await holds()).toEqual({ source: [[first.snapshot, 0], [next.snapshot, 0], [again.snapshot, 1]], target: [[first.snapshot, 0], [next.snapshot, 0], [again.snapshot, 1]] });
  });

  it("plans with the caller's listing of the source when it has the snapshot (no listing of its own), and lists itself when it has not", async () => {
    const { id, dir } = await datasetWith(1);
    const pool = cluster().nodes[0]!.pool;
    const runner = new RecordingRunner(execaRunner);
    const recorded = new Replicator({ store: new ZfsStore({ pool, runner }), stateDir });
    const listings = (): number => runner.calls.filter((c) => c.args.join(' ') === argv.getSnapshots(pool, id).join(' ')).length;
    const first = await recorded.replicate({ datasetId: id, peer });
    // The scheduler's way: the interval's snapshot taken, then listed once for every replica.
    await writeFile(join(dir, 'next.txt'), 'next\n');
    const name = newSnapshotName();
    await source.takeSnapshot(id, name);
    const shared = await source.listSnapshots(id);
    let asked = 0;
    runner.calls.length = 0;
    const next = await recorded.replicate({ datasetId: id, peer, snapshotName: name, deferSettle: true, prune: false, sourceListing: async () => (asked++, shared) });
    expect(next).toMatchObject({ snapshot: name, incremental: true, baseSnapshot: first.snapshot });
    expect(asked).toBe(1);
    expect(listings()).toBe(0);
    await recorded.settle(peer, id);
    expect((await target.listSnapshots(id)).at(-1)?.guid).toBe(shared.find((s) => s.snapshot === name)?.guid);

    // A listing made before the snapshot was taken: ignored, the step lists the source itself.
    await writeFile(join(dir, 'again.txt'), 'again\n');
    const later = newSnapshotName();
    await source.takeSnapshot(id, later);
    runner.calls.length = 0;
    const again = await recorded.replicate({ datasetId: id, peer, snapshotName: later, deferSettle: true, prune: false, sourceListing: async () => shared });
    expect(again).toMatchObject({ snapshot: later, incremental: true, baseSnapshot: name });
    expect(listings()).toBe(1);
    await recorded.settle(peer, id);
    expect(await replicaContents(target, id)).toEqual(await hashFiles(dir));
  });

  it("uses a receive opened ahead for the next step's stream, and a receive opened ahead but not used changes nothing", async () => {
    const { id, dir } = await datasetWith(2);
    const first = await replicator.replicate({ datasetId: id, peer });
    await writeFile(join(dir, 'final.txt'), 'final\n');
    await replicator.prepareReceive(peer, id); // resolves once the peer's zfs receive waits for the stream
    const final = await replicator.replicate({ datasetId: id, peer, deferSettle: true, prune: false, skipHeldBaseHolds: true });
    expect(final).toMatchObject({ incremental: true, baseSnapshot: first.snapshot });
    expect((await target.listSnapshots(id)).map((s) => s.guid)).toContain(final.guid);
    await replicator.settle(peer, id);

    // Opened for this dataset, then a step for another one: the unused receive is closed, and
    // the dataset on the peer is as it was; its next step goes on from there.
    const before = (await target.listSnapshots(id)).map((s) => s.snapshot);
    await replicator.prepareReceive(peer, id);
    const other = await datasetWith(1);
    await replicator.replicate({ datasetId: other.id, peer });
    expect((await target.listSnapshots(id)).map((s) => s.snapshot)).toEqual(before);
    await writeFile(join(dir, 'again.txt'), 'again\n');
    expect(await replicator.replicate({ datasetId: id, peer })).toMatchObject({ incremental: true, baseSnapshot: final.snapshot });
  });

  it('a journaled step whose snapshot reached the peer but is gone from the source is dropped, not retried for ever', async () => {
    // What a sibling replica's failing step did to a shared snapshot before the scheduler took
    // it itself: the step that had sent it could not hold it, kept its journal (the peer holds
    // the snapshot), and every later step's recovery failed on the same hold.
    const { id, dir } = await datasetWith(2);
    await replicator.replicate({ datasetId: id, peer });
    await writeFile(join(dir, 'more.txt'), 'more\n');
    const sent = await replicator.replicate({ datasetId: id, peer, deferSettle: true, prune: false });
    await source.destroySnapshot(id, sent.snapshot);
    // The peer holds a snapshot the source lacks: a divergence, told as such, each time.
    for (let i = 0; i < 2; i++) {
      await expect(replicator.replicate({ datasetId: id, peer })).rejects.toMatchObject({ code: 'DROVER_ZFS_DIVERGED' });
    }
    expect((await target.listSnapshots(id)).some((s) => s.guid === sent.guid)).toBe(true);
  });

  it('serializes two sends of one dataset to one peer', async () => {
    const { id } = await datasetWith(4);
    const [a, b] = await Promise.all([replicator.replicate({ datasetId: id, peer }), replicator.replicate({ datasetId: id, peer })]);
    const [first, second] = a.incremental ? [b, a] : [a, b];
    expect(first.incremental).toBe(false);
    expect(second).toMatchObject({ incremental: true, baseSnapshot: first.snapshot });
    expect((await target.listSnapshots(id)).map((s) => s.snapshot)).toEqual([first.snapshot, second.snapshot]);
    expect((await target.listSnapshots(id)).map((s) => s.userrefs)).toEqual([0, 1]);
  });

  it('refuses a peer whose host key does not match the pinned fingerprint', async () => {
    const n2 = cluster().nodes[1]!;
    const wrong = await sshPeerFor(cluster(), n2, { hostKeyFingerprint: `SHA256:${'A'.repeat(43)}`, id: `${n2.uuid}-wrong` });
    peers.push(wrong);
    const { id } = await datasetWith(1);
    const err = await new Replicator({ store: source, stateDir, retries: 0 }).replicate({ datasetId: id, peer: wrong }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DROVER_SSH_HOST_KEY_MISMATCH', retryable: false });
    expect((err as Error).message).toContain(n2.ssh!.hostKeyFingerprint);
  });
});

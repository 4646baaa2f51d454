import { describe, expect, it } from 'vitest';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { DroverError } from '#common/errors.ts';
import { silentLogger } from '#common/log.ts';
import type { AgentDesired } from '#common/channel.ts';
import type { Node, ReplicationPolicy } from '#common/model.ts';
import { FakeDatasetStore } from '../testing/fake-dataset-store.ts';
import { DS_1, DS_2, NODE_A, NODE_B, dataset, desired, migration, node } from '../testing/fixtures.ts';
import type { Peer, PruneRule, ReplicateOptions, ReplicateResult } from '../transfer/types.ts';
import { newSnapshotName } from '../transfer/snapshot-name.ts';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';
import { ReplicationScheduler } from './scheduler.ts';

const NODE_C = '33333333-3333-4333-8333-333333333333';
const POLICY: ReplicationPolicy = { replicas: 2, interval_seconds: 10, retention: { primary: '1x1m(keep=all) | 24x1h', replicas: '1x1m(keep=all) | 24x1h' } };

interface Call {
  options: ReplicateOptions;
  at: number;
  settle(result?: Partial<ReplicateResult>): void;
  fail(err: Error): void;
}

/** A replicate() whose steps end when the test says (or at once, with `auto`). */
function world(opts: { onChange?: () => void; auto?: boolean; concurrency?: number; writtenProperty?: boolean; abortLandsLate?: boolean; listing?: (peer: string) => ZfsSnapshotInfo[]; settle?: boolean; holdSettle?: boolean } = {}) {
  const clock = new FakeClock();
  const store = new FakeDatasetStore({ writtenProperty: opts.writtenProperty ?? false });
  const calls: Call[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const replicate = (options: ReplicateOptions): Promise<ReplicateResult> =>
    new Promise((resolve, reject) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const done = (): void => void (inFlight -= 1);
      const name = options.snapshotName ?? newSnapshotName(new Date(clock.now()));
      const call: Call = {
        options,
        at: clock.now(),
        settle: (r = {}) => {
          done();
          // The replica now holds the snapshot (and, `-I`, every one before it it lacked).
          void store.listSnapshots(options.datasetId).then(
            (source) => {
              const sent = source.find((x) => x.snapshot === (r.snapshot ?? name));
              const held = targets.get(options.peer.id) ?? [];
              for (const x of source) if (sent && x.createtxg <= sent.createtxg && !held.some((h) => h.guid === x.guid)) held.push({ ...x, userrefs: 0 });
              targets.set(options.peer.id, held);
              resolve({ snapshot: name, guid: sent?.guid ?? '1', bytes: 1000, incremental: true, baseSnapshot: null, resumed: false, ...r });
            },
            () => resolve({ snapshot: name, guid: '1', bytes: 1000, incremental: true, baseSnapshot: null, resumed: false, ...r }),
          );
        },
        fail: (err) => {
          done();
          reject(err);
        },
      };
      // abortLandsLate: the abort reaches the step after its stream, which then ends as the test says.
      if (!opts.abortLandsLate) options.signal?.addEventListener('abort', () => call.fail(new DroverError('DROVER_TRANSFER_ABORTED', 'aborted', { retryable: true })), { once: true });
      calls.push(call);
      if (opts.auto) call.settle();
    });
  // Each replica's snapshots, as a step over `beginStep` sees them (the replica side's pruning).
  const targets = new Map<string, ZfsSnapshotInfo[]>();
  const fakePeer = (id: string): Peer =>
    ({
      id,
      beginStep: async () => ({
        listSnapshots: async () => [...(targets.get(id) ?? [])],
        release: async () => {},
        destroySnapshot: async (snapshot: string) => void targets.set(id, (targets.get(id) ?? []).filter((x) => x.snapshot !== snapshot)),
        end: async () => {},
      }),
    }) as unknown as Peer;
  const peers = { peerFor: async (n: Node): Promise<Peer> => fakePeer(n.uuid), close: async () => {} };
  const listed: string[] = [];
  const listing = opts.listing;
  const peerSnapshots = listing
    ? async (peer: Peer): Promise<ZfsSnapshotInfo[]> => {
        listed.push(peer.id);
        return listing(peer.id);
      }
    : undefined;
  const settled: string[] = [];
  // With `holdSettle`, each settle waits until the test calls the function left in `settling`.
  const settling: Array<() => void> = [];
  const settle = async (peer: Peer): Promise<void> => {
    if (opts.holdSettle) await new Promise<void>((resolve) => settling.push(resolve));
    settled.push(peer.id);
  };
  const scheduler = new ReplicationScheduler({
    nodeUuid: NODE_A,
    clock,
    log: silentLogger(),
    store,
    replicate,
    peers,
    concurrency: opts.concurrency ?? 4,
    ...(peerSnapshots ? { peerSnapshots } : {}),
    ...(opts.settle ? { settle } : {}),
    ...(opts.onChange ? { onChange: opts.onChange } : {}),
  });
  return { clock, store, calls, scheduler, listed, targets, settled, settling, maxInFlight: () => maxInFlight };
}

function view(fields: Partial<AgentDesired> = {}, datasets = [DS_1]): AgentDesired {
  return desired({
    nodes: [node(), node(NODE_B, '127.0.0.12'), node(NODE_C, '127.0.0.13')],
    datasets: datasets.map((id) => dataset(id, NODE_A, { replication: POLICY, replicas: [NODE_B, NODE_C] })),
    ...fields,
  });
}

/** Lets promise callbacks run (the fake clock's sleepers and the steps' continuations). */
async function settleMicrotasks(): Promise<void> {
  for (let i = 0; i < 200; i++) await Promise.resolve();
}

describe('ReplicationScheduler', () => {
  it('runs one step per replica every interval', async () => {
    const w = world({ auto: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view());
    await settleMicrotasks();
    expect(w.calls.map((c) => c.options.peer.id).sort()).toEqual([NODE_B, NODE_C]);
    await w.clock.advance(9_999);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(2);
    await w.clock.advance(1);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(4);
    await w.clock.advance(20_000);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(8);
    await w.scheduler.stop();
  });

  it('keeps the interval schedule after a slow step: the next step at once, the one after it on the schedule', async () => {
    const w = world({ writtenProperty: false });
    await w.store.createDataset(DS_1, { maximumSize: null });
    const t0 = w.clock.now();
    w.scheduler.sync(view({ datasets: [dataset(DS_1, NODE_A, { replication: POLICY, replicas: [NODE_B] })] }));
    await settleMicrotasks();
    expect(w.calls).toHaveLength(1);
    // The first step takes 15 s of a 10 s interval (a slow `zfs snapshot`, a long stream).
    await w.clock.advance(15_000);
    w.calls[0]!.settle();
    await settleMicrotasks();
    expect(w.calls).toHaveLength(2);
    expect(w.calls[1]!.at - t0).toBe(15_000);
    w.calls[1]!.settle();
    await settleMicrotasks();
    // Due at 20 s (the schedule), not 25 s (a interval after the late step began).
    await w.clock.advance(4_999);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(2);
    await w.clock.advance(1);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(3);
    expect(w.calls[2]!.at - t0).toBe(20_000);
    // Each step sent a snapshot of its own.
    expect(new Set(w.calls.map((c) => c.options.snapshotName)).size).toBe(3);
    w.calls[2]!.settle();
    await w.scheduler.stop();
  });

  it("sends a dataset's new snapshot to every replica due within the interval at once, not at each one's own due time", async () => {
    const w = world();
    await w.store.createDataset(DS_1, { maximumSize: null });
    const t0 = w.clock.now();
    w.scheduler.sync(view());
    await settleMicrotasks();
    const at = (peer: string) => w.calls.filter((c) => c.options.peer.id === peer).map((c) => c.at - t0);
    w.calls.find((c) => c.options.peer.id === NODE_B)!.settle();
    // C's first step fails: retried 1 s later, its steps would from then on begin 1 s after B's,
    // and send the snapshot B's step took 1 s earlier.
    w.calls.find((c) => c.options.peer.id === NODE_C)!.fail(new DroverError('DROVER_SSH_DISCONNECTED', 'cut', { retryable: true }));
    await settleMicrotasks();
    for (let t = 0; t < 30; t++) {
      await w.clock.advance(1_000);
      await settleMicrotasks();
      for (const c of w.calls) c.settle();
      await settleMicrotasks();
    }
    const b = at(NODE_B);
    const c = at(NODE_C);
    expect(c[1]).toBe(1_000);
    // From B's next step on, C's steps begin with B's and send the snapshot B's step chose.
    expect(c.slice(-2)).toEqual(b.slice(-2));
    const last = w.calls.filter((x) => x.at - t0 === b.at(-1));
    expect(last).toHaveLength(2);
    expect(new Set(last.map((x) => x.options.snapshotName)).size).toBe(1);
    await w.scheduler.stop();
  });

  it('holds each replica base with its own tag, never asks for a rollback, and leaves pruning and the holds\' move out of the step', async () => {
    const w = world({ auto: true, settle: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view());
    await settleMicrotasks();
    const byPeer = Object.fromEntries(w.calls.map((c) => [c.options.peer.id, c.options]));
    expect(byPeer[NODE_B]!.holdTags).toEqual({ source: { base: 'drover-base-22222222', step: 'drover-step-22222222' }, target: { base: 'drover-base', step: 'drover-step' } });
    expect(byPeer[NODE_C]!.holdTags!.source.base).toBe('drover-base-33333333');
    expect(byPeer[NODE_B]!.allowRollback).toBeUndefined();
    // The engine stops once the replica holds the snapshot; the scheduler settles and prunes after.
    expect(byPeer[NODE_B]).toMatchObject({ prune: false, deferSettle: true, intermediates: false });
    await w.scheduler.idle();
    expect(w.settled.sort()).toEqual([NODE_B, NODE_C]);
    // Recorded before the first hold, so destroying the dataset can release them.
    expect(await w.store.recordedHoldTags(DS_1)).toEqual(['drover-base-22222222', 'drover-base-33333333', 'drover-step-22222222', 'drover-step-33333333']);
    await w.scheduler.stop();
  });

  it('names the base its last settle held to the next step (no step holds on it), and forgets it after a failure', async () => {
    const w = world({ settle: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view({ datasets: [dataset(DS_1, NODE_A, { replication: POLICY, replicas: [NODE_B] })] }));
    await settleMicrotasks();
    expect(w.calls).toHaveLength(1);
    expect(w.calls[0]!.options.heldBase).toBeUndefined();
    w.calls[0]!.settle();
    await w.scheduler.idle();
    await w.clock.advance(10_000);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(2);
    // The first step's snapshot, settled on both sides: the second step's base if nothing changed.
    expect(w.calls[1]!.options.heldBase).toBe(w.calls[0]!.options.snapshotName);
    w.calls[1]!.fail(new DroverError('DROVER_SSH_DISCONNECTED', 'cut', { retryable: true }));
    await settleMicrotasks();
    await w.clock.advance(1_000);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(3);
    // A failed step may have left holds and a journal: the engine decides afresh.
    expect(w.calls[2]!.options.heldBase).toBeUndefined();
    w.calls[2]!.settle();
    await w.scheduler.stop();
  });

  it('reads the recorded hold tags once per term as primary, not before every step', async () => {
    const w = world({ auto: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    let reads = 0;
    const read = w.store.recordedHoldTags.bind(w.store);
    w.store.recordedHoldTags = async (id: string) => (reads++, read(id));
    w.scheduler.sync(view());
    await settleMicrotasks();
    const first = reads;
    await w.clock.advance(30_000);
    await settleMicrotasks();
    expect(w.calls.length).toBeGreaterThanOrEqual(6);
    expect(reads).toBe(first);
    await w.scheduler.stop();
  });

  it('never runs more steps at once than the bound, and a pair never overlaps itself', async () => {
    const w = world({ concurrency: 3 });
    for (const id of [DS_1, DS_2]) await w.store.createDataset(id, { maximumSize: null });
    w.scheduler.sync(view({}, [DS_1, DS_2])); // 4 pairs
    await settleMicrotasks();
    expect(w.calls).toHaveLength(3);
    await w.clock.advance(60_000); // steps longer than the interval
    await settleMicrotasks();
    expect(w.calls).toHaveLength(3);
    w.calls[0]!.settle();
    await settleMicrotasks();
    // The next pair's snapshot waits (5 s at most here) for its dataset's running stream to end.
    await w.clock.advance(5_000);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(4);
    const fourth = w.calls[3]!.options;
    expect(`${fourth.datasetId}/${fourth.peer.id}`).not.toBe(`${w.calls[0]!.options.datasetId}/${w.calls[0]!.options.peer.id}`);
    // The first pair is overdue, but all slots are taken again.
    await w.clock.advance(10_000);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(4);
    expect(w.maxInFlight()).toBe(3);
    for (const c of w.calls.slice(1)) c.settle();
    await settleMicrotasks();
    expect(w.calls.length).toBeGreaterThan(4);
    expect(w.maxInFlight()).toBe(3);
    for (const c of w.calls) c.settle();
    await w.scheduler.stop();
  });

  it('pauses a dataset while a migration of it is unfinished, then resumes', async () => {
    const w = world();
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view());
    await settleMicrotasks();
    expect(w.calls).toHaveLength(2);
    const moving = view({ migrations: [migration({ dataset_ids: [DS_1], from: NODE_A, to: NODE_B, phase: 'pre-copy' })] });
    w.scheduler.sync(moving);
    await settleMicrotasks();
    // The running steps were cut short: the move's own step to a replica must not wait for them.
    expect(w.calls.every((c) => c.options.signal?.aborted)).toBe(true);
    expect(w.scheduler.statuses().map((s) => s.state)).toEqual(['paused', 'paused']);
    expect(w.scheduler.statuses().every((s) => s.last_error === null)).toBe(true);
    await w.clock.advance(60_000);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(2);
    w.scheduler.sync(view());
    await settleMicrotasks();
    expect(w.calls).toHaveLength(4);
    expect(w.scheduler.statuses().map((s) => s.state)).toEqual(['seeding', 'seeding']);
    for (const c of w.calls) c.settle();
    await w.scheduler.stop();
  });

  it('makes a move wait until a replica step whose abort landed after its stream has ended, and starts no step until the move is over', async () => {
    const w = world({ abortLandsLate: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view());
    await settleMicrotasks();
    expect(w.calls).toHaveLength(2);
    // The move begins before the loop's pass told the scheduler: beforeMove pauses by itself.
    let waited = false;
    const move = w.scheduler.beforeMove(DS_1).then(() => void (waited = true));
    await settleMicrotasks();
    expect(w.calls.every((c) => c.options.signal?.aborted)).toBe(true);
    expect(w.scheduler.statuses().map((s) => s.state)).toEqual(['paused', 'paused']);
    expect(waited).toBe(false);
    // One replica's receive finished despite the abort; the other failed: only then may the move plan.
    w.calls[0]!.settle();
    await settleMicrotasks();
    expect(waited).toBe(false);
    w.calls[1]!.fail(new DroverError('DROVER_TRANSFER_ABORTED', 'aborted', { retryable: true }));
    await move;
    expect(waited).toBe(true);
    // No replica changes during the move: no step starts while its migration is in the view.
    w.scheduler.sync(view({ migrations: [migration({ dataset_ids: [DS_1], from: NODE_A, to: NODE_B, phase: 'pre-copy' })] }));
    await w.clock.advance(60_000);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(2);
    // A failed move (the view says so) resumes replication.
    w.scheduler.sync(view({ migrations: [migration({ dataset_ids: [DS_1], from: NODE_A, to: NODE_B, phase: 'failed' })] }));
    await settleMicrotasks();
    expect(w.calls).toHaveLength(4);
    for (const c of w.calls.slice(2)) c.settle();
    await w.scheduler.stop();
  });

  it('lets a move give up waiting for the replication steps when its own signal aborts', async () => {
    const w = world({ abortLandsLate: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view());
    await settleMicrotasks();
    const cancel = new AbortController();
    const move = w.scheduler.beforeMove(DS_1, cancel.signal);
    cancel.abort(new Error('the move was cancelled'));
    await expect(move).rejects.toThrow('the move was cancelled');
    for (const c of w.calls) c.settle();
    await w.scheduler.stop();
  });

  it('after a handoff the old primary replicates no more and releases its per-replica holds', async () => {
    const w = world({ auto: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view());
    await settleMicrotasks();
    const snap = (await w.store.listSnapshots(DS_1))[0] ?? (await w.store.createSnapshot(DS_1, 'drover-20260101T000000000Z-0001'));
    await w.store.hold(DS_1, snap.snapshot, 'drover-base-22222222');
    await w.store.hold(DS_1, snap.snapshot, 'drover-base');
    w.scheduler.sync(desired({ nodes: view().nodes, datasets: [dataset(DS_1, NODE_B, { replication: POLICY, replicas: [NODE_A, NODE_C] })] }));
    await settleMicrotasks();
    await w.clock.advance(60_000);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(2);
    expect(w.scheduler.statuses()).toEqual([]);
    expect(await w.store.recordedHoldTags(DS_1)).toEqual([]);
    // The migration's own fixed hold (the way back) is not the scheduler's to release.
    expect((await w.store.listSnapshots(DS_1))[0]!.userrefs).toBe(1);
    await w.scheduler.stop();
  });

  it('backs off a failing pair, but retries at least every interval', async () => {
    const w = world();
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view({ datasets: [dataset(DS_1, NODE_A, { replication: { ...POLICY, interval_seconds: 5 }, replicas: [NODE_B] })] }));
    const started = w.clock.now();
    for (let i = 0; i < 6; i++) {
      await settleMicrotasks();
      const call = w.calls.at(-1)!;
      call.fail(new DroverError('DROVER_TRANSFER_STALLED', 'no byte for 60 s', { retryable: true }));
      await settleMicrotasks();
      await w.clock.tick();
    }
    await settleMicrotasks();
    const gaps = w.calls.map((c) => c.at - started).map((t, i, all) => (i === 0 ? t : t - all[i - 1]!));
    expect(gaps.slice(0, 6)).toEqual([0, 1_000, 2_000, 4_000, 5_000, 5_000]);
    const status = w.scheduler.statuses()[0]!;
    expect(status.state).toBe('error');
    expect(status.last_error).toEqual({ code: 'DROVER_TRANSFER_STALLED', message: 'no byte for 60 s' });
    w.calls.at(-1)!.settle();
    await w.scheduler.stop();
  });

  it('tells of a step as soon as the replica holds its snapshot, before the tail, with a seq that rises with each change of status and not with time', async () => {
    let changes = 0;
    const w = world({ settle: true, holdSettle: true, onChange: () => void (changes += 1) });
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view({ datasets: [dataset(DS_1, NODE_A, { replication: POLICY, replicas: [NODE_B] })] }));
    await settleMicrotasks();
    const seeding = w.scheduler.statusReport();
    await w.clock.advance(500);
    expect(w.scheduler.statusReport().seq).toBe(seeding.seq);
    const before = changes;
    w.calls[0]!.settle();
    await settleMicrotasks();
    // The holds are still being moved (settle held), and the status already says ok.
    expect(w.settling).toHaveLength(1);
    expect(changes).toBeGreaterThan(before);
    const ok = w.scheduler.statusReport();
    expect(ok.statuses[0]).toMatchObject({ state: 'ok', newest_snapshot: w.calls[0]!.options.snapshotName });
    expect(ok.seq).toBeGreaterThan(seeding.seq);
    await w.clock.advance(2_000);
    expect(w.scheduler.statusReport().seq).toBe(ok.seq);
    w.settling.shift()!();
    await settleMicrotasks();
    // A move pauses the pair: told at once, with a higher seq.
    const paused = changes;
    w.scheduler.sync(view({ datasets: [dataset(DS_1, NODE_A, { replication: POLICY, replicas: [NODE_B] })], migrations: [migration({ dataset_ids: [DS_1], from: NODE_A, to: NODE_B, phase: 'pre-copy' })] }));
    expect(changes).toBeGreaterThan(paused);
    const report = w.scheduler.statusReport();
    expect(report.statuses[0]!.state).toBe('paused');
    expect(report.seq).toBeGreaterThan(ok.seq);
    await w.scheduler.stop();
  });

  it('reports lag, bytes and the newest snapshot; a diverged replica keeps its last good snapshot', async () => {
    const w = world();
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view({ datasets: [dataset(DS_1, NODE_A, { replication: POLICY, replicas: [NODE_B] })] }));
    await settleMicrotasks();
    expect(w.scheduler.statuses()[0]).toMatchObject({ state: 'seeding', newest_snapshot: null, lag_seconds: null, bytes_sent_total: 0 });
    const first = w.calls[0]!;
    first.settle({ bytes: 4096 });
    await settleMicrotasks();
    const takenAt = first.at;
    await w.clock.advance(3_000);
    let status = w.scheduler.statuses()[0]!;
    expect(status).toMatchObject({ state: 'ok', bytes_sent_total: 4096, last_success_at: takenAt, newest_snapshot_created_at: takenAt, lag_seconds: 3, last_error: null });
    expect(status.newest_snapshot).toMatch(/^drover-/);
    await w.clock.advance(7_000);
    await settleMicrotasks();
    w.calls[1]!.fail(new DroverError('DROVER_ZFS_DIVERGED', 'dataset diverged: its latest snapshot is newer than the newest common one'));
    await settleMicrotasks();
    status = w.scheduler.statuses()[0]!;
    expect(status).toMatchObject({ state: 'diverged', bytes_sent_total: 4096, newest_snapshot_created_at: takenAt, lag_seconds: 10 });
    expect(status.last_error?.code).toBe('DROVER_ZFS_DIVERGED');
    // Its next refusal arrives as a broken pipe: still diverged, not a transient error.
    await w.clock.advance(10_000);
    await settleMicrotasks();
    w.calls[2]!.fail(new DroverError('DROVER_ZFS_INTERRUPTED', 'zfs receive: exit SIGPIPE', { retryable: true }));
    await settleMicrotasks();
    expect(w.scheduler.statuses()[0]).toMatchObject({ state: 'diverged', last_error: { code: 'DROVER_ZFS_DIVERGED' } });
    await w.scheduler.stop();
  });

  it('sends the newest snapshot again instead of taking one when nothing was written (where zfs can tell)', async () => {
    const w = world({ auto: true, writtenProperty: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    await w.store.createSnapshot(DS_1, 'drover-20260101T000000000Z-0001');
    w.scheduler.sync(view({ datasets: [dataset(DS_1, NODE_A, { replication: POLICY, replicas: [NODE_B] })] }));
    await settleMicrotasks();
    expect(w.calls[0]!.options.snapshotName).toBe('drover-20260101T000000000Z-0001');
    w.store.write(DS_1, 100);
    await w.clock.advance(10_000);
    await settleMicrotasks();
    expect(w.calls[1]!.options.snapshotName).not.toBe('drover-20260101T000000000Z-0001');
    await w.scheduler.stop();
  });

  it('takes a snapshot every interval where zfs cannot tell what was written (zfs-fuse)', async () => {
    const w = world({ auto: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    await w.store.createSnapshot(DS_1, 'drover-20260101T000000000Z-0001');
    w.scheduler.sync(view({ datasets: [dataset(DS_1, NODE_A, { replication: POLICY, replicas: [NODE_B] })] }));
    await settleMicrotasks();
    expect(w.calls[0]!.options.snapshotName).toMatch(/^drover-20260101T000000000Z-/);
    expect(w.calls[0]!.options.snapshotName).not.toBe('drover-20260101T000000000Z-0001');
    await w.scheduler.stop();
  });

  it('takes one snapshot per interval for all replicas of a dataset', async () => {
    const w = world({ auto: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view());
    await settleMicrotasks();
    await w.clock.advance(10_000);
    await settleMicrotasks();
    const names = w.calls.map((c) => c.options.snapshotName);
    expect(names).toHaveLength(4);
    expect(names[0]).toBe(names[1]);
    expect(names[2]).toBe(names[3]);
    expect(names[0]).not.toBe(names[2]);
  });

  it("lists the primary's snapshots once per interval for all its replicas' steps, after the snapshot, and again after pruning", async () => {
    const w = world({ auto: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    let listings = 0;
    const list = w.store.listSnapshots.bind(w.store);
    w.store.listSnapshots = (id: string) => (listings++, list(id));
    w.scheduler.sync(view());
    await settleMicrotasks();
    const firstTwo = w.calls.slice(0, 2);
    expect(firstTwo).toHaveLength(2);
    listings = 0;
    const [b, c] = await Promise.all(firstTwo.map((x) => x.options.sourceListing!()));
    // One listing for both steps, made after the interval's snapshot was taken.
    expect(listings).toBe(1);
    expect(b).toBe(c);
    expect(b!.map((x) => x.snapshot)).toContain(firstTwo[0]!.options.snapshotName);
    await w.clock.advance(10_000);
    await settleMicrotasks();
    const nextTwo = w.calls.slice(2, 4);
    expect(nextTwo).toHaveLength(2);
    listings = 0;
    // The next interval's snapshot: listed anew, once, and the old one's listing is not reused.
    const [b2, c2] = await Promise.all(nextTwo.map((x) => x.options.sourceListing!()));
    expect(listings).toBe(1);
    expect(b2).toBe(c2);
    expect(b2!.map((x) => x.snapshot)).toContain(nextTwo[0]!.options.snapshotName);
    await w.scheduler.stop();
  });

  it("forgets the shared listing when the primary's pruning starts and when it ends, and during a move", async () => {
    const tight: ReplicationPolicy = { ...POLICY, retention: { primary: '1x1s(keep=all)', replicas: '1x1s(keep=all)' } };
    const w = world({ listing: () => [] });
    await w.store.createDataset(DS_1, { maximumSize: null });
    const one = (fields: Partial<AgentDesired> = {}): AgentDesired => view({ datasets: [dataset(DS_1, NODE_A, { replication: tight, replicas: [NODE_B] })], ...fields });
    w.scheduler.sync(one());
    await settleMicrotasks();
    const first = w.calls[0]!;
    const before = await first.options.sourceListing!();
    expect(await first.options.sourceListing!()).toBe(before);
    // The step ends: its tail starts the primary's first pruning, which forgets the listing.
    first.settle();
    await w.scheduler.idle();
    await settleMicrotasks();
    const after = await first.options.sourceListing!();
    expect(after).not.toBe(before);
    expect(await first.options.sourceListing!()).toBe(after);
    // A move of the dataset: whatever was listed is forgotten.
    w.scheduler.sync(one({ migrations: [migration({ dataset_ids: [DS_1] })] }));
    await settleMicrotasks();
    expect(await first.options.sourceListing!()).not.toBe(after);
    await w.scheduler.stop();
  });

  it('takes the next snapshot beside a step\'s tail when the pair\'s next step is due before it ends, one per interval', async () => {
    const w = world({ settle: true, holdSettle: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view({ datasets: [dataset(DS_1, NODE_A, { replication: POLICY, replicas: [NODE_B] })] }));
    await settleMicrotasks();
    expect(w.calls).toHaveLength(1);
    // The step outlasts the interval: the next one is due at once, its snapshot is taken in the tail.
    await w.clock.advance(15_000);
    w.calls[0]!.settle({ snapshot: w.calls[0]!.options.snapshotName! });
    await settleMicrotasks();
    // The replica counts as holding it before the holds moved; the next snapshot is taken meanwhile.
    expect(w.scheduler.statuses()[0]).toMatchObject({ state: 'ok', newest_snapshot: w.calls[0]!.options.snapshotName });
    expect(w.calls).toHaveLength(1);
    expect(await w.store.listSnapshots(DS_1)).toHaveLength(2);
    w.settling.shift()!();
    await settleMicrotasks();
    expect(w.calls).toHaveLength(2);
    const next = w.calls[1]!.options.snapshotName!;
    expect(next).not.toBe(w.calls[0]!.options.snapshotName);
    expect(next).toMatch(/^drover-20260101T000015000Z-/);
    expect((await w.store.listSnapshots(DS_1)).map((x) => x.snapshot)).toEqual([w.calls[0]!.options.snapshotName, next]);
    // A step that fits in the interval takes none ahead: the next one is taken when due.
    await w.clock.advance(1_000);
    w.calls[1]!.settle({ snapshot: next });
    await settleMicrotasks();
    w.settling.shift()!();
    await settleMicrotasks();
    expect(await w.store.listSnapshots(DS_1)).toHaveLength(2);
    await w.clock.advance(4_000);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(3);
    // On the interval's schedule (due at 10 s, 20 s…), not a interval after the late step began.
    expect(w.calls[2]!.options.snapshotName).toMatch(/^drover-20260101T000020000Z-/);
    w.calls[2]!.settle();
    await settleMicrotasks();
    w.settling.shift()!();
    await w.scheduler.stop();
  });

  it('takes a dataset\'s next snapshot between its streams, waiting two intervals (5 s at most) for a running one', async () => {
    const w = world();
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view());
    await settleMicrotasks();
    const [b, c] = [NODE_B, NODE_C].map((n) => w.calls.find((x) => x.options.peer.id === n)!);
    b!.settle({ snapshot: b!.options.snapshotName! });
    await settleMicrotasks();
    // B is due again while C still streams: B's snapshot waits for C's stream to end.
    await w.clock.advance(10_000);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(2);
    await w.clock.advance(400);
    c!.settle({ snapshot: c!.options.snapshotName! });
    await settleMicrotasks();
    // Taken once C's stream ended, and C (due too) sends it with B: the replicas line up.
    expect(w.calls.slice(2).map((x) => x.options.snapshotName)).toEqual([expect.stringMatching(/^drover-20260101T000010400Z-/), w.calls[2]!.options.snapshotName]);
    // A stream that does not end (C's) holds B's next snapshot back 5 s, no more.
    const b2 = w.calls.find((x, i) => i >= 2 && x.options.peer.id === NODE_B)!;
    b2.settle({ snapshot: b2.options.snapshotName! });
    await settleMicrotasks();
    await w.clock.advance(9_600);
    await settleMicrotasks();
    const before = w.calls.length;
    await w.clock.advance(4_999);
    await settleMicrotasks();
    expect(w.calls.length).toBe(before);
    await w.clock.advance(1);
    await settleMicrotasks();
    expect(w.calls.length).toBe(before + 1);
    for (const x of w.calls) x.settle();
    await w.scheduler.stop();
  });

  it('takes the interval snapshot itself before any replica step sends it, so a step that fails leaves it to the others', async () => {
    // The engine destroys on a permanent failure only a snapshot its step took itself; a
    // snapshot it finds existing belongs to the caller. Two replicas' steps that each took
    // the shared snapshot for their own let a full or diverged replica's failure destroy it
    // under the healthy replica's send (the quarantined replication-faults e2e).
    const w = world();
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view());
    await settleMicrotasks();
    expect(w.calls).toHaveLength(2);
    const name = w.calls[0]!.options.snapshotName!;
    expect(w.calls[1]!.options.snapshotName).toBe(name);
    expect((await w.store.listSnapshots(DS_1)).map((s) => s.snapshot)).toEqual([name]);
    w.calls.find((c) => c.options.peer.id === NODE_C)!.fail(new DroverError('DROVER_ZFS_NO_SPACE', 'out of space'));
    await settleMicrotasks();
    expect((await w.store.listSnapshots(DS_1)).map((s) => s.snapshot)).toEqual([name]);
    w.calls.find((c) => c.options.peer.id === NODE_B)!.settle({ snapshot: name });
    await settleMicrotasks();
    expect(w.scheduler.statuses().find((s) => s.replica === NODE_B)).toMatchObject({ state: 'ok', newest_snapshot: name });
    await w.scheduler.stop();
  });

  it('sends the same snapshot again while no replica has received one, instead of taking one per interval that nothing prunes', async () => {
    const w = world();
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view());
    for (let i = 0; i < 3; i++) {
      await settleMicrotasks();
      for (const call of w.calls.slice(-2)) call.fail(new DroverError('DROVER_ZFS_NO_SPACE', 'out of space'));
      await settleMicrotasks();
      await w.clock.advance(10_000);
    }
    await settleMicrotasks();
    expect(new Set(w.calls.map((c) => c.options.snapshotName)).size).toBe(1);
    expect(await w.store.listSnapshots(DS_1)).toHaveLength(1);
    // Once one replica has it, the next interval takes a new one.
    for (const call of w.calls.slice(-2)) call.settle({ snapshot: call.options.snapshotName! });
    await settleMicrotasks();
    await w.clock.advance(10_000);
    await settleMicrotasks();
    expect(new Set(w.calls.map((c) => c.options.snapshotName)).size).toBe(2);
    await w.scheduler.stop();
  });

  it('takes a fresh snapshot after a pause instead of sending the one its cut-short steps never delivered', async () => {
    const w = world();
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view());
    await settleMicrotasks();
    const first = w.calls[0]!.options.snapshotName;
    w.scheduler.sync(view({ migrations: [migration({ dataset_ids: [DS_1], from: NODE_A, to: NODE_B, phase: 'pre-copy' })] }));
    await settleMicrotasks();
    await w.clock.advance(40_000);
    w.scheduler.sync(view({ migrations: [migration({ dataset_ids: [DS_1], from: NODE_A, to: NODE_B, phase: 'failed' })] }));
    await settleMicrotasks();
    expect(w.calls).toHaveLength(4);
    const again = w.calls.slice(2).map((c) => c.options.snapshotName);
    expect(new Set(again).size).toBe(1);
    expect(again[0]).not.toBe(first);
    for (const c of w.calls.slice(2)) c.settle({ snapshot: c.options.snapshotName! });
    await settleMicrotasks();
    // Its lag is the new snapshot's age, not the 40 s old one's.
    expect(w.scheduler.statuses().every((s) => s.lag_seconds !== null && s.lag_seconds < 1)).toBe(true);
    await w.scheduler.stop();
  });

  describe('pruning by the grid, off the step', () => {
    const tight: ReplicationPolicy = { ...POLICY, retention: { primary: '1x1s(keep=all)', replicas: '1x1s(keep=all)' } };
    const tightView = (fields: Partial<AgentDesired> = {}): AgentDesired => view({ datasets: [dataset(DS_1, NODE_A, { replication: tight, replicas: [NODE_B, NODE_C] })], ...fields });
    const names = async (w: ReturnType<typeof world>): Promise<string[]> => (await w.store.listSnapshots(DS_1)).map((s) => s.snapshot);

    /** Replica B's steps end at once, C's first step hangs until the test settles it. */
    async function cHangs(w: ReturnType<typeof world>, intervals: number): Promise<Call> {
      await w.store.createDataset(DS_1, { maximumSize: null });
      w.scheduler.sync(tightView());
      await settleMicrotasks();
      const c = w.calls.find((x) => x.options.peer.id === NODE_C)!;
      await bSteps(w, intervals, true);
      return c;
    }

    /** Lets B's steps end, interval after interval. */
    async function bSteps(w: ReturnType<typeof world>, intervals: number, now: boolean): Promise<void> {
      for (let i = 0; i <= intervals; i++) {
        if (i > 0 || !now) await w.clock.advance(10_000);
        await settleMicrotasks();
        // B's new snapshot waits 5 s at most for C's stream (hung here) to end.
        await w.clock.advance(5_000);
        await settleMicrotasks();
        for (const b of w.calls.filter((x) => x.options.peer.id === NODE_B)) b.settle({ snapshot: b.options.snapshotName! });
        await settleMicrotasks();
      }
    }

    it('never prunes on the primary what a running step sends, and prunes the rest by the grid beside the steps', async () => {
      // Both replicas listed before their first step (empty): known, so the grid may prune.
      const w = world({ listing: () => [] });
      const c = await cHangs(w, 6); // B took 7 snapshots, one an interval; C still sends the first
      const all = [...new Set(w.calls.filter((x) => x.options.peer.id === NODE_B).map((x) => x.options.snapshotName!))];
      expect(all).toHaveLength(7);
      // Pruned once a minute (not after each step): the newest, and C's in-flight first one, stay.
      const kept = await names(w);
      expect(kept[0]).toBe(c.options.snapshotName);
      expect(kept.at(-1)).toBe(all.at(-1));
      expect(kept.length).toBeLessThan(all.length - 2);
      c.settle({ snapshot: c.options.snapshotName! });
      await w.scheduler.stop();
    });

    it('prunes nothing on the primary while a replica’s snapshots are not known', async () => {
      const w = world(); // no listing before the first step: C is unknown until its step succeeds
      const c = await cHangs(w, 6);
      expect(await names(w)).toHaveLength(7);
      c.settle({ snapshot: c.options.snapshotName! });
      await w.scheduler.stop();
    });

    it('keeps on the primary the newest snapshot it shares with each replica, and on a replica the newest it shares with the others', async () => {
      const w = world({ listing: () => [] });
      const c = await cHangs(w, 6);
      const first = c.options.snapshotName!;
      c.settle({ snapshot: first }); // C holds only the first
      await settleMicrotasks();
      // Another minute of B's steps while C's next step hangs: the first stays (C's newest).
      await bSteps(w, 7, false);
      const cNext = w.calls.filter((x) => x.options.peer.id === NODE_C).at(-1)!;
      const kept = await names(w);
      expect(kept[0]).toBe(first);
      expect(kept.length).toBeLessThan(9);
      // B's side was pruned in its steps: it keeps its newest and the one it shares with C.
      const onB = (w.targets.get(NODE_B) ?? []).map((s) => s.snapshot);
      expect(onB).toContain(first);
      expect(onB.length).toBeLessThan(9);
      cNext.settle({ snapshot: cNext.options.snapshotName! });
      await w.scheduler.stop();
    });

    it('lists a replica whose snapshots are not known before its first step, once', async () => {
      const w = world({ auto: true, listing: () => [] });
      await w.store.createDataset(DS_1, { maximumSize: null });
      w.scheduler.sync(tightView());
      await settleMicrotasks();
      expect([...w.listed].sort()).toEqual([NODE_B, NODE_C]);
      await w.clock.advance(10_000);
      await settleMicrotasks();
      expect(w.calls.length).toBeGreaterThan(2);
      expect(w.listed).toHaveLength(2);
      await w.scheduler.stop();
    });

    it('has the target of a move keep the newest snapshot it shares with the other replicas', async () => {
      const T = Date.UTC(2026, 0, 1);
      const [s1, s2, s3, s4] = [1, 2, 3, 4].map((i) => {
        const snapshot = newSnapshotName(new Date(T + i * 60_000));
        return { name: `p/drover/${DS_1}@${snapshot}`, snapshot, guid: `g${i}`, createtxg: i, userrefs: 0 };
      }) as [ZfsSnapshotInfo, ZfsSnapshotInfo, ZfsSnapshotInfo, ZfsSnapshotInfo];
      const w = world({ listing: (peer) => (peer === NODE_B ? [s1] : [s2]) });
      await w.store.createDataset(DS_1, { maximumSize: null });
      w.scheduler.sync(tightView());
      await settleMicrotasks();
      // A move to a node that is no replica: its copy keeps g1 (B's) and g2 (C's).
      const D = '44444444-4444-4444-8444-444444444444';
      const move = w.scheduler.forMigration({ datasetId: DS_1, peer: { id: D } as Peer, allowRollback: true });
      expect((move.prune as PruneRule)({ side: 'target', snapshots: [s1, s2, s3, s4], other: [s1, s2, s3, s4], snapshot: s4.snapshot })).toEqual([s3.snapshot]);
      for (const c of w.calls) c.settle();
      await w.scheduler.stop();
    });
  });

  it('never lets a move roll back a target that is one of the dataset replicas', async () => {
    const w = world({ auto: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    w.scheduler.sync(view());
    await settleMicrotasks();
    const peer = (id: string): Peer => ({ id }) as Peer;
    // A replica (written outside drover, it would be diverged): the move must fail, not discard.
    const toReplica = w.scheduler.forMigration({ datasetId: DS_1, peer: peer(NODE_C), allowRollback: true, prune: false });
    expect(toReplica.allowRollback).toBeUndefined();
    // Without a migration in the view to name the kept copy after, a diverged replica is refused.
    expect(toReplica.setAsideDiverged).toBeUndefined();
    expect(toReplica.prune).toBe(false);
    expect(typeof w.scheduler.forMigration({ datasetId: DS_1, peer: peer(NODE_B), allowRollback: true }).prune).toBe('function');
    // Another node (no replica of it): the migration's own rule stands.
    const D = '44444444-4444-4444-8444-444444444444';
    expect(w.scheduler.forMigration({ datasetId: DS_1, peer: peer(D), allowRollback: true }).allowRollback).toBe(true);
    // Every move of a replicated dataset sends the snapshots between its base and its own (-I).
    expect(toReplica.intermediates).toBe(true);
    // A dataset without a policy: untouched.
    expect(w.scheduler.forMigration({ datasetId: DS_2, peer: peer(NODE_C), allowRollback: true }).allowRollback).toBe(true);
    expect(w.scheduler.forMigration({ datasetId: DS_2, peer: peer(NODE_C) }).intermediates).toBeUndefined();
    await w.scheduler.stop();
  });

  it('has a move set a diverged replica target aside under the migration generation, and never another node', async () => {
    const w = world({ auto: true });
    await w.store.createDataset(DS_1, { maximumSize: null });
    const m = migration({ dataset_ids: [DS_1], from: NODE_A, to: NODE_C, phase: 'pre-copy', generation: 7 });
    w.scheduler.sync(view({ migrations: [m] }));
    await settleMicrotasks();
    const peer = (id: string): Peer => ({ id }) as Peer;
    const toReplica = w.scheduler.forMigration({ datasetId: DS_1, peer: peer(NODE_C), corr: m.id, allowRollback: true });
    expect(toReplica).toMatchObject({ setAsideDiverged: 7, intermediates: true });
    expect(toReplica.allowRollback).toBeUndefined();
    const D = '44444444-4444-4444-8444-444444444444';
    expect(w.scheduler.forMigration({ datasetId: DS_1, peer: peer(D), corr: m.id, allowRollback: true }).setAsideDiverged).toBeUndefined();
    await w.scheduler.stop();
  });

  it('replicates nothing for a dataset primary elsewhere, deleted, or without a policy', async () => {
    const w = world({ auto: true });
    w.scheduler.sync(
      view({
        datasets: [
          dataset(DS_1, NODE_B, { replication: POLICY, replicas: [NODE_A, NODE_C] }),
          dataset(DS_2, NODE_A, { replication: null, replicas: [] }),
          dataset('aaaaaaaa-0000-4000-8000-000000000003', NODE_A, { replication: POLICY, replicas: [NODE_B], deleted: true }),
        ],
      }),
    );
    await w.clock.advance(30_000);
    await settleMicrotasks();
    expect(w.calls).toHaveLength(0);
    expect(w.scheduler.statuses()).toEqual([]);
    await w.scheduler.stop();
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { useTestCluster } from '../support/cluster.ts';
import { LOCAL_CLUSTER, describeWith } from '../support/require.ts';
import { MiB, deployRedis, facts, finished, missingKeys, onePrimary, reached, redisOf, writeKeys, writeWhileMoving, type RedisApp } from './redis-world.ts';
import { MigrationStack } from './stack.ts';

// Moving Redis with its data between two nodes of a local cluster: real drover-control and
// drover-agent processes, real dockerd, zfs-fuse and sshd per node (docs/DESIGN.md §5). First a
// move there and back; then the invariants under faults, one fault per test, each on its own
// application: after convergence exactly one node runs Redis with its dataset writable, and
// every key Redis acknowledged is there.
// A loaded machine (shared by several test runs) makes zfs-fuse slow: generous per-test bounds.
const LONG = 600_000;

describeWith(LOCAL_CLUSTER, 'moving an application with its data (2-node local cluster)', () => {
  const cluster = useTestCluster({ nodes: 2, images: ['redis'] });
  let dir: string;
  let stack: MigrationStack;
  const uuid = (i: number) => stack.node(i).uuid;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-migration-e2e-'));
    stack = await MigrationStack.start(cluster(), dir, { ackWaitMs: 3_000 });
  });

  afterAll(async () => {
    await stack?.stop();
    if (dir && process.env.DROVER_KEEP_LOGS === undefined) await rm(dir, { recursive: true, force: true });
  }, LONG);

  /** Samples docker on both nodes while `body` runs; fails if Redis ever ran on both at once. */
  async function neverTwo<T>(app: RedisApp, body: () => Promise<T>): Promise<T> {
    let stop = false;
    const seen: string[] = [];
    const sampler = (async () => {
      while (!stop) {
        const running = (await facts(stack, app)).filter((f) => f.running).map((f) => f.index);
        if (running.length > 1) seen.push(`running on ${running.join(' and ')}`);
      }
    })();
    try {
      return await body();
    } finally {
      stop = true;
      await sampler;
      expect(seen).toEqual([]);
    }
  }

  let store: RedisApp;
  let keys: string[] = [];

  it('moves Redis with its dataset to node 2, and every key written on node 1 is read there', async () => {
    store = await deployRedis(stack, 'store', 1, 16);
    keys = await writeKeys(stack, store, 'one', 500);
    const moved = await neverTwo(store, async () => {
      const answer = await stack.api.moveContainer('store', uuid(2));
      expect(answer.migration?.phase).toBe('pending');
      return finished(stack, answer.migration!.id);
    });
    expect(moved).toMatchObject({ phase: 'done', error: null, from: uuid(1), to: uuid(2) });
    expect(await onePrimary(stack, store)).toBe(2);
    expect((await redisOf(stack, store)).node).toBe(uuid(2));
    expect(await missingKeys(stack, store, keys)).toEqual([]);
    expect(moved.bytes_sent).toBeGreaterThan(16 * MiB);
    // The source keeps its copy, read-only: the way back.
    expect((await facts(stack, store)).find((f) => f.index === 1)).toEqual({ index: 1, running: false, writable: false });
  }, LONG);

  it('moves it back incrementally: far fewer bytes than the dataset holds', async () => {
    keys.push(...(await writeKeys(stack, store, 'two', 200)));
    const answer = await stack.api.moveContainer('store', uuid(1));
    const back = await finished(stack, answer.migration!.id);
    expect(back).toMatchObject({ phase: 'done', error: null });
    expect(await onePrimary(stack, store)).toBe(1);
    expect(await missingKeys(stack, store, keys)).toEqual([]);
    expect(back.bytes_sent).toBeLessThan(2 * MiB);
  }, LONG);

  it('ends with one primary and every acknowledged key when the source agent is killed during pre-copy', async () => {
    const app = await deployRedis(stack, 'precopy', 1, 4);
    const before = await writeKeys(stack, app, 'before', 200);
    const stopWriting = new AbortController();
    const writer = writeWhileMoving(stack, app, 'during', stopWriting.signal);
    const answer = await stack.api.moveContainer(app.name, uuid(2));
    await reached(stack, answer.migration!.id, ['pre-copy']);
    await stack.killAgent(1);
    await stack.startAgent(1);
    const end = await finished(stack, answer.migration!.id);
    stopWriting.abort();
    await writer.done;
    const primary = await onePrimary(stack, app);
    expect(primary).toBe(end.phase === 'done' ? 2 : 1);
    expect(await missingKeys(stack, app, [...before, ...writer.acked])).toEqual([]);
  }, LONG);

  /**
   * Deploys `name` on node 1 with keys, starts a writer, starts a move to node 2 with a proxy
   * that never acks the hold (so cutover waits 3 s before stopping Redis), and calls `fault`
   * once the migration is in cutover. Returns what the test checks.
   */
  async function moveWithFaultInCutover(name: string, fault: () => Promise<void>) {
    const app = await deployRedis(stack, name, 1, 4);
    const before = await writeKeys(stack, app, 'before', 200);
    const stopWriting = new AbortController();
    const writer = writeWhileMoving(stack, app, 'during', stopWriting.signal);
    const proxy = stack.silentProxy();
    try {
      const answer = await stack.api.moveContainer(app.name, uuid(2));
      await reached(stack, answer.migration!.id, ['cutover']);
      await fault();
      const end = await finished(stack, answer.migration!.id);
      stopWriting.abort();
      await writer.done;
      return { app, end, acked: [...before, ...writer.acked] };
    } finally {
      stopWriting.abort();
      await proxy.stop();
    }
  }

  it('finishes on node 2 with every acknowledged key when the target agent is killed during cutover', async () => {
    const { app, end, acked } = await moveWithFaultInCutover('tkill', async () => {
      await stack.killAgent(2);
      await new Promise((r) => setTimeout(r, 2_000));
      await stack.startAgent(2);
    });
    // The transport is the target's sshd, not its agent: the move goes on, and the restarted
    // agent starts Redis once it reads the handoff.
    expect(end.phase).toBe('done');
    expect(await onePrimary(stack, app)).toBe(2);
    expect(await missingKeys(stack, app, acked)).toEqual([]);
  }, LONG);

  it('goes back to node 1 with every acknowledged key when the transport is cut during the final send', async () => {
    let restored = false;
    try {
      const { app, end, acked } = await moveWithFaultInCutover('cut', async () => stack.cutSsh(2));
      expect(end).toMatchObject({ phase: 'failed' });
      expect(end.error).toMatch(/final send/);
      expect(await onePrimary(stack, app)).toBe(1);
      expect(await missingKeys(stack, app, acked)).toEqual([]);
      await stack.restoreSsh(2);
      restored = true;
    } finally {
      if (!restored) await stack.restoreSsh(2).catch(() => {});
    }
  }, LONG);

  it('ends with one primary and every acknowledged key when the control service restarts mid-migration', async () => {
    const { app, end, acked } = await moveWithFaultInCutover('ctlrestart', async () => {
      await stack.killControl();
      await new Promise((r) => setTimeout(r, 1_500));
      await stack.startControl();
    });
    expect(['done', 'failed']).toContain(end.phase);
    expect(await onePrimary(stack, app)).toBe(end.phase === 'done' ? 2 : 1);
    expect(await missingKeys(stack, app, acked)).toEqual([]);
  }, LONG);
});

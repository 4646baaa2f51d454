import { describe, expect, it } from 'vitest';
import { DroverError } from '#common/errors.ts';
import { silentLogger } from '#common/log.ts';
import { parseRetentionGrid, type RetentionGrid } from '#common/retention-grid.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { DS_1 } from '../testing/fixtures.ts';
import { newSnapshotName } from '../transfer/snapshot-name.ts';
import type { PeerStep } from '../transfer/types.ts';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';
import { Pruner } from './pruner.ts';
import type { ReplicationStore } from './scheduler.ts';

const T = Date.UTC(2026, 0, 1);
const KEY = `${DS_1}/replica`;

function grid(text: string): RetentionGrid {
  const parsed = parseRetentionGrid(text);
  if (!parsed.ok) throw new Error('grid');
  return parsed.grid;
}

/** Snapshots 1..n, a minute apart; `held` ones carry a user hold. */
function snapshots(n: number, held: number[] = []): ZfsSnapshotInfo[] {
  return Array.from({ length: n }, (_, i) => {
    const snapshot = newSnapshotName(new Date(T + (i + 1) * 60_000));
    return { name: `p/drover/${DS_1}@${snapshot}`, snapshot, guid: `g${i + 1}`, createtxg: i + 1, userrefs: held.includes(i + 1) ? 1 : 0 };
  });
}

/** A replica whose every destroy takes `destroyMs` of the clock; `busy` ones answer busy, `broken` ones fail. */
function replica(clock: FakeClock, target: ZfsSnapshotInfo[], opts: { destroyMs: number; busy?: string[]; broken?: string[] }) {
  const calls = { lists: 0, destroys: [] as string[] };
  const step = {
    listSnapshots: async () => (calls.lists++, [...target]),
    release: async () => {},
    destroySnapshot: async (snapshot: string) => {
      calls.destroys.push(snapshot);
      await clock.advance(opts.destroyMs);
      if (opts.busy?.includes(snapshot)) throw new DroverError('DROVER_ZFS_BUSY', 'held');
      if (opts.broken?.includes(snapshot)) throw new DroverError('DROVER_ZFS_COMMAND_FAILED', 'broken');
      target.splice(target.findIndex((s) => s.snapshot === snapshot), 1);
    },
  } as unknown as PeerStep;
  return { step, calls };
}

function pruner(clock: FakeClock, source: ZfsSnapshotInfo[]): Pruner {
  const store = { listSnapshots: async () => [...source] } as unknown as ReplicationStore;
  return new Pruner({ store, clock, log: silentLogger() });
}

describe("Pruner: the replica's side, a few at a time", () => {
  it('destroys a plan over the next tails, at least a fifth per tail, more while the next step is not due, listing only to plan', async () => {
    const clock = new FakeClock(T + 20 * 60_000);
    const target = snapshots(12); // 1..12 on the replica; the primary has 12 only
    const names = target.map((s) => s.snapshot);
    const source = target.slice(11);
    const p = pruner(clock, source);
    const { step, calls } = replica(clock, target, { destroyMs: 100 });
    const input = { key: KEY, step, datasetId: DS_1, grid: grid('1x1s(keep=all)'), others: [] };
    // 11 doomed (1..11: all but the newest, which is also the newest common): 3 a tail at least.
    const known = await p.pruneTarget({ ...input, plan: true, known: null, until: clock.now() });
    expect(calls.destroys).toHaveLength(3);
    expect(calls.destroys[0]).toBe(names[0]); // oldest first
    expect(known?.size).toBe(9);
    expect(p.targetPending(KEY)).toBe(true);
    // A tail with slack for ~4 more (each 100 ms): 4, and no listing (the plan stands).
    const after = await p.pruneTarget({ ...input, plan: false, known: known!, until: clock.now() + 450 });
    expect(calls.destroys).toHaveLength(7);
    expect(calls.lists).toBe(1);
    expect(after?.size).toBe(5);
    // Two tails with no slack finish it: 3, then the last 1.
    const third = await p.pruneTarget({ ...input, plan: false, known: after!, until: 0 });
    const last = await p.pruneTarget({ ...input, plan: false, known: third!, until: 0 });
    expect(calls.destroys).toHaveLength(11);
    expect(p.targetPending(KEY)).toBe(false);
    expect(target.map((s) => s.snapshot)).toEqual([names[11]]);
    expect(last).toEqual(new Set(['g12']));
    // Nothing left: a tail that does not plan destroys nothing.
    await p.pruneTarget({ ...input, plan: false, known: last!, until: clock.now() + 10_000 });
    expect(calls.destroys).toHaveLength(11);
  });

  it('never plans the newest, the newest common with the primary or another replica, or a held one', async () => {
    const clock = new FakeClock(T + 20 * 60_000);
    const target = snapshots(8, [2]);
    const p = pruner(clock, target.filter((s) => s.guid === 'g5'));
    const { step, calls } = replica(clock, target, { destroyMs: 10 });
    await p.pruneTarget({ key: KEY, step, datasetId: DS_1, grid: grid('1x1s(keep=all)'), others: [new Set(['g3', 'g99'])], plan: true, known: null, until: clock.now() + 10_000 });
    expect(target.map((s) => s.guid)).toEqual(['g2', 'g3', 'g5', 'g8']);
    expect(calls.destroys).toHaveLength(4);
  });

  it('skips a snapshot held since the plan, and drops what is left when a destroy fails otherwise', async () => {
    const clock = new FakeClock(T + 20 * 60_000);
    const target = snapshots(12);
    const names = target.map((s) => s.snapshot);
    const p = pruner(clock, target.slice(11));
    const { step, calls } = replica(clock, target, { destroyMs: 100, busy: [names[0]!], broken: [names[4]!] });
    const input = { key: KEY, step, datasetId: DS_1, grid: grid('1x1s(keep=all)'), others: [] };
    const known = await p.pruneTarget({ ...input, plan: true, known: null, until: clock.now() });
    // Busy: kept, and still known; the other two went.
    expect(known).not.toBeNull();
    expect(known!.has('g1')).toBe(true);
    expect(known!.has('g2')).toBe(false);
    // The broken destroy ends the plan: nothing more is issued until the next plan.
    expect(await p.pruneTarget({ ...input, plan: false, known: known!, until: clock.now() + 10_000 })).toBeNull();
    expect(calls.destroys.at(-1)).toBe(names[4]);
    expect(p.targetPending(KEY)).toBe(false);
    await p.pruneTarget({ ...input, plan: false, known: known!, until: clock.now() + 10_000 });
    expect(calls.destroys.at(-1)).toBe(names[4]);
  });
});

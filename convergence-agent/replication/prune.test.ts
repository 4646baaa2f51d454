import { describe, expect, it } from 'vitest';
import { parseRetentionGrid, type RetentionGrid } from '#common/retention-grid.ts';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';
import { pruneEveryMs, replicationPruneRule, snapshotTime, snapshotsToPruneByGrid, sourcePrunePlan, staleBaseHolds } from './prune.ts';

function grid(text: string): RetentionGrid {
  const parsed = parseRetentionGrid(text);
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  return parsed.grid;
}

const T0 = Date.UTC(2026, 0, 1);
/** A drover snapshot taken `minutes` after T0; guid `g<n>`. */
function snap(n: number, minutes: number, userrefs = 0): ZfsSnapshotInfo {
  const stamp = new Date(T0 + minutes * 60_000).toISOString().replace(/[-:]/g, '').replace('.', '');
  const name = `drover-${stamp}-${String(n).padStart(4, '0')}`;
  return { name: `p/drover/x@${name}`, snapshot: name, guid: `g${n}`, createtxg: n, userrefs };
}

// One snapshot a minute for 10 minutes; the grid keeps the last 2 minutes, all of them.
const SNAPS = Array.from({ length: 10 }, (_, i) => snap(i + 1, i));
const TWO_MINUTES = grid('1x2m(keep=all)');

describe('snapshotsToPruneByGrid', () => {
  it('reads the time from the name and refuses any other name', () => {
    expect(snapshotTime(SNAPS[3]!.snapshot)).toBe(T0 + 3 * 60_000);
    expect(snapshotTime('drover-manual')).toBeNull();
  });

  it('destroys what the grid does not keep, oldest first', () => {
    expect(snapshotsToPruneByGrid({ snapshots: SNAPS, grid: TWO_MINUTES, partners: [] })).toEqual(SNAPS.slice(0, 8).map((s) => s.snapshot));
  });

  it('keeps the newest common snapshot with every replica, however old', () => {
    const replicaB = new Set(['g1', 'g2', 'g3']);
    const replicaC = new Set(['g5', 'g6']);
    const doomed = snapshotsToPruneByGrid({ snapshots: SNAPS, grid: TWO_MINUTES, partners: [replicaB, replicaC] });
    expect(doomed).not.toContain(SNAPS[2]!.snapshot); // g3: newest common with B
    expect(doomed).not.toContain(SNAPS[5]!.snapshot); // g6: newest common with C
    expect(doomed).toContain(SNAPS[1]!.snapshot);
    expect(doomed).toContain(SNAPS[4]!.snapshot);
  });

  it('never destroys the newest, a held or an undatable snapshot', () => {
    const held = SNAPS.map((s, i) => (i === 0 ? { ...s, userrefs: 1 } : s));
    const manual: ZfsSnapshotInfo = { name: 'p/drover/x@drover-keep-me', snapshot: 'drover-keep-me', guid: 'gm', createtxg: 0, userrefs: 0 };
    const doomed = snapshotsToPruneByGrid({ snapshots: [manual, ...held], grid: grid('1x1s'), partners: [] });
    expect(doomed).not.toContain(SNAPS[0]!.snapshot);
    expect(doomed).not.toContain('drover-keep-me');
    expect(doomed).not.toContain(SNAPS[9]!.snapshot);
    expect(doomed).toHaveLength(8);
  });

  it('keeps one per interval spread over a longer grid', () => {
    const doomed = new Set(snapshotsToPruneByGrid({ snapshots: SNAPS, grid: grid('1x1m(keep=all) | 3x3m'), partners: [] }));
    expect(SNAPS.filter((s) => !doomed.has(s.snapshot)).map((s) => s.guid)).toEqual(['g1', 'g4', 'g7', 'g10']);
  });
});

describe('replicationPruneRule', () => {
  it("prunes the primary by its grid keeping every replica's newest common, and the replica by the replicas' grid", () => {
    const rule = replicationPruneRule({ primary: TWO_MINUTES, replicas: grid('1x5m(keep=all)') }, () => [new Set(['g2'])]);
    const replica = SNAPS.slice(0, 10);
    const source = rule({ side: 'source', snapshots: SNAPS, other: replica.slice(0, 4), snapshot: SNAPS[9]!.snapshot });
    expect(source).not.toContain(SNAPS[1]!.snapshot); // the other replica's newest common
    expect(source).not.toContain(SNAPS[3]!.snapshot); // this replica's newest common
    expect(source).toContain(SNAPS[0]!.snapshot);
    // The replica keeps its newest common snapshot with the other replica too (g2): a move may
    // make it primary, and the other must still share a base with it then.
    const target = rule({ side: 'target', snapshots: replica, other: SNAPS, snapshot: SNAPS[9]!.snapshot });
    expect(target).toEqual([0, 2, 3, 4].map((i) => SNAPS[i]!.snapshot));
  });
});

describe('sourcePrunePlan (the primary, pruned beside the steps)', () => {
  const guids = (...ns: number[]): Set<string> => new Set(ns.map((n) => `g${n}`));

  it('prunes by the grid, keeping the newest snapshot shared with every replica', () => {
    expect(sourcePrunePlan({ snapshots: SNAPS, grid: TWO_MINUTES, replicas: [guids(1, 2, 3), guids(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)], running: [] })).toEqual([1, 2, 4, 5, 6, 7, 8].map((n) => SNAPS[n - 1]!.snapshot));
  });

  it('prunes nothing while a replica is not known, or a running step’s replica is not', () => {
    expect(sourcePrunePlan({ snapshots: SNAPS, grid: TWO_MINUTES, replicas: [guids(10), null], running: [] })).toEqual([]);
    expect(sourcePrunePlan({ snapshots: SNAPS, grid: TWO_MINUTES, replicas: [guids(10)], running: [{ guids: null, sending: SNAPS[9]!.snapshot }] })).toEqual([]);
  });

  it('never proposes a snapshot inside a running step’s -I range (after its base, up to what it sends)', () => {
    // The replica holds g3; its running step sends g7 with every snapshot between.
    const out = sourcePrunePlan({ snapshots: SNAPS, grid: TWO_MINUTES, replicas: [guids(1, 2, 3)], running: [{ guids: guids(1, 2, 3), sending: SNAPS[6]!.snapshot }] });
    expect(out).toEqual([SNAPS[0]!.snapshot, SNAPS[1]!.snapshot, SNAPS[7]!.snapshot]);
  });

  it('lets a lagging replica that runs no step pin only its newest common snapshot, not the ones after it', () => {
    const out = sourcePrunePlan({ snapshots: SNAPS, grid: TWO_MINUTES, replicas: [guids(1, 2)], running: [] });
    expect(out).toEqual([1, 3, 4, 5, 6, 7, 8].map((n) => SNAPS[n - 1]!.snapshot));
  });

  it('keeps what a running step sends whole to a replica sharing nothing', () => {
    const out = sourcePrunePlan({ snapshots: SNAPS, grid: TWO_MINUTES, replicas: [guids()], running: [{ guids: guids(), sending: SNAPS[4]!.snapshot }] });
    expect(out).not.toContain(SNAPS[4]!.snapshot);
    expect(out).toContain(SNAPS[3]!.snapshot);
  });
});

describe('staleBaseHolds and pruneEveryMs', () => {
  it('names the held snapshots older than the base, never the base or a newer one', () => {
    const snaps = [snap(1, 0, 1), snap(2, 1, 0), snap(3, 2, 2), snap(4, 3, 1), snap(5, 4, 1)];
    expect(staleBaseHolds(snaps, snaps[3]!)).toEqual([snaps[0]!.snapshot, snaps[2]!.snapshot]);
    expect(staleBaseHolds(snaps, null)).toEqual([]);
  });

  it('prunes every ten intervals, at least once a minute', () => {
    expect(pruneEveryMs(1)).toBe(10_000);
    expect(pruneEveryMs(5)).toBe(50_000);
    expect(pruneEveryMs(30)).toBe(60_000);
  });
});

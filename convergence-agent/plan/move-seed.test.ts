import { describe, expect, it } from 'vitest';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';
import { planMoveSeed } from './move-seed.ts';

/** Snapshot n of the primary's lineage: guid `g<n>`, createtxg n. */
function snap(n: number): ZfsSnapshotInfo {
  const name = `drover-20260101T0000${String(n).padStart(2, '0')}000Z-${n}`;
  return { name: `p/drover/x@${name}`, snapshot: name, guid: `g${n}`, createtxg: n, userrefs: 0 };
}

const SOURCE = [1, 2, 3, 4, 5, 6].map(snap);
const guids = (...n: number[]): Set<string> => new Set(n.map((i) => `g${i}`));

describe('planMoveSeed', () => {
  it('seeds a node with no copy from the newest snapshot the only replica shares with the primary', () => {
    expect(planMoveSeed({ source: SOURCE, target: [], replicas: [guids(2, 3, 4)] })).toEqual({ kind: 'seed', snapshot: snap(4).snapshot, guid: 'g4' });
  });

  it('seeds from the oldest of the replicas’ newest common snapshots, so -I carries every replica’s', () => {
    // Replica A is ahead (g5), replica B lags (g3) and has pruned g1–g2: g3 is the base.
    expect(planMoveSeed({ source: SOURCE, target: [], replicas: [guids(4, 5), guids(3)] })).toMatchObject({ kind: 'seed', snapshot: snap(3).snapshot });
  });

  it('reads snapshots in creation order, whatever order they were listed in', () => {
    expect(planMoveSeed({ source: [...SOURCE].reverse(), target: [], replicas: [guids(1, 2, 5)] })).toMatchObject({ snapshot: snap(5).snapshot });
  });

  it('leaves a target that holds snapshots to the engine, which plans from them by guid', () => {
    expect(planMoveSeed({ source: SOURCE, target: [snap(2)], replicas: [guids(4)] })).toEqual({ kind: 'none', reason: 'target-has-copy' });
  });

  it('sends the move’s snapshot whole as before when the dataset has no other replica', () => {
    expect(planMoveSeed({ source: SOURCE, target: [], replicas: [] })).toEqual({ kind: 'none', reason: 'no-replicas' });
  });

  it('does not guess when no replica’s snapshots are known', () => {
    expect(planMoveSeed({ source: SOURCE, target: [], replicas: [null, null] })).toEqual({ kind: 'none', reason: 'replicas-unknown' });
  });

  it('plans from the known replicas when one is not known', () => {
    expect(planMoveSeed({ source: SOURCE, target: [], replicas: [null, guids(2)] })).toMatchObject({ kind: 'seed', snapshot: snap(2).snapshot });
  });

  it('skips a diverged replica that shares nothing with the primary, and seeds for the others', () => {
    expect(planMoveSeed({ source: SOURCE, target: [], replicas: [guids(90, 91), guids(5)] })).toMatchObject({ kind: 'seed', snapshot: snap(5).snapshot });
    expect(planMoveSeed({ source: SOURCE, target: [], replicas: [guids(90)] })).toEqual({ kind: 'none', reason: 'nothing-in-common' });
  });
});

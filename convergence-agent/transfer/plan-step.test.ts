import { describe, expect, it } from 'vitest';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';
import { divergenceError, planStep, snapshotsToPrune } from './plan-step.ts';

const snap = (snapshot: string, guid: string, createtxg: number, userrefs = 0): ZfsSnapshotInfo => ({
  name: `tank/drover/x@${snapshot}`, snapshot, guid, createtxg, userrefs,
});

const a = snap('drover-a', '111', 10);
const b = snap('drover-b', '222', 20);
const c = snap('drover-c', '333', 30);

describe('planning a replication step', () => {
  it('sends a full stream to a target that does not have the dataset', () => {
    expect(planStep([a, b], null, 'drover-b')).toEqual({ kind: 'full', snapshot: b });
  });

  it('sends an increment from the newest snapshot both sides share, matched by guid', () => {
    // The target's copy of drover-a has other txgs (and could have another name): only the guid counts.
    const targetA = { ...snap('drover-a', '111', 3) };
    expect(planStep([a, b, c], [targetA], 'drover-c')).toEqual({ kind: 'incremental', snapshot: c, base: a });
    expect(planStep([a, b, c], [targetA, snap('drover-b', '222', 7)], 'drover-c')).toMatchObject({ kind: 'incremental', base: b });
  });

  it('does not take a same-named snapshot with another guid as the base', () => {
    const impostor = snap('drover-b', '999', 7);
    expect(planStep([a, b, c], [snap('drover-a', '111', 3), impostor], 'drover-c')).toMatchObject({ kind: 'diverged', base: a, targetNewer: [impostor] });
  });

  it('reports a target already at the snapshot as up to date', () => {
    expect(planStep([a, b], [snap('drover-a', '111', 3), snap('drover-b', '222', 4)], 'drover-b')).toEqual({ kind: 'up-to-date', snapshot: b });
  });

  it('finds a target whose latest snapshot is not on the source diverged', () => {
    const rogue = snap('drover-rogue', '777', 9);
    const plan = planStep([a, b, c], [snap('drover-a', '111', 3), rogue], 'drover-c');
    expect(plan).toEqual({ kind: 'diverged', snapshot: c, base: a, targetNewer: [rogue] });
  });

  it('finds a target with snapshots but none in common', () => {
    expect(planStep([a, b], [snap('drover-z', '999', 3)], 'drover-b')).toMatchObject({ kind: 'no-common' });
    expect(planStep([a, b], [], 'drover-b')).toMatchObject({ kind: 'no-common' });
  });

  it('names both snapshots in the divergence error', () => {
    const plan = planStep([a, b, c], [snap('drover-a', '111', 3), snap('drover-rogue', '777', 9)], 'drover-c');
    if (plan.kind !== 'diverged') throw new Error('expected diverged');
    const err = divergenceError(plan, { datasetId: 'x', peer: 'n2' });
    expect(err.code).toBe('DROVER_ZFS_DIVERGED');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('drover-rogue');
    expect(err.message).toContain('drover-a');
    expect(err.detail).toMatchObject({ commonSnapshot: 'drover-a', targetSnapshot: 'drover-rogue' });
  });

  it('refuses to plan for a snapshot the source does not have', () => {
    expect(() => planStep([a], null, 'drover-b')).toThrow(expect.objectContaining({ code: 'DROVER_TRANSFER_NO_SNAPSHOT' }));
  });
});

describe('pruning old snapshots', () => {
  it('keeps the newest ones, held ones and the base, and destroys the rest oldest first', () => {
    const d = snap('drover-d', '444', 40);
    const held = snap('drover-h', '555', 15, 1);
    expect(snapshotsToPrune([d, c, held, b, a], 2, ['drover-c']).map((s) => s.snapshot)).toEqual(['drover-a', 'drover-b']);
    expect(snapshotsToPrune([a, b, c, d], 1, ['drover-b']).map((s) => s.snapshot)).toEqual(['drover-a', 'drover-c']);
  });

  it('never prunes the only snapshot', () => {
    expect(snapshotsToPrune([a], 0, [])).toEqual([]);
  });
});

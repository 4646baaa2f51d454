import { describe, expect, it } from 'vitest';
import { addMount, addPendingRelease, emptyMountState, mountCount, removeMount, type MountState } from './mounts.ts';

const where = { dataset_id: 'd1', path: '/p/d1' };

function mountAll(state: MountState, pairs: Array<[string, string]>): MountState {
  return pairs.reduce((s, [name, id]) => addMount(s, name, id, where).state, state);
}

describe('mount multiset', () => {
  it('counts a repeated Mount of one ID twice, as docker cp does on a running container', () => {
    const state = mountAll(emptyMountState(), [
      ['v1', 'A'],
      ['v1', 'A'],
    ]);
    expect(mountCount(state, 'v1')).toBe(2);
    const once = removeMount(state, 'v1', 'A');
    expect(once).toMatchObject({ removed: true, last: false });
    expect(mountCount(once.state, 'v1')).toBe(1);
    expect(removeMount(once.state, 'v1', 'A')).toMatchObject({ removed: true, last: true });
  });

  it('reports the first mount of a volume only once', () => {
    const first = addMount(emptyMountState(), 'v1', 'A', where);
    expect(first.first).toBe(true);
    expect(addMount(first.state, 'v1', 'B', where).first).toBe(false);
    expect(addMount(first.state, 'v2', 'A', where).first).toBe(true);
  });

  it('keeps a volume mounted until every ID is unmounted', () => {
    let state = mountAll(emptyMountState(), [
      ['v1', 'A'],
      ['v1', 'B'],
    ]);
    const a = removeMount(state, 'v1', 'A');
    expect(a.last).toBe(false);
    state = a.state;
    const b = removeMount(state, 'v1', 'B');
    expect(b.last).toBe(true);
    expect(b.state.volumes).toEqual({});
  });

  it('treats an Unmount of an unknown volume or ID as a no-op that changes nothing', () => {
    const state = mountAll(emptyMountState(), [['v1', 'A']]);
    expect(removeMount(state, 'v1', 'Z')).toEqual({ state, removed: false, last: false });
    expect(removeMount(state, 'nope', 'A')).toEqual({ state, removed: false, last: false });
    expect(mountCount(state, 'nope')).toBe(0);
  });

  it('never counts below zero', () => {
    let state = mountAll(emptyMountState(), [['v1', 'A']]);
    state = removeMount(state, 'v1', 'A').state;
    const again = removeMount(state, 'v1', 'A');
    expect(again.removed).toBe(false);
    expect(mountCount(again.state, 'v1')).toBe(0);
  });

  it('forgets a pending lease release when the volume is mounted again', () => {
    const pending = addPendingRelease(emptyMountState(), { dataset_id: 'd1', name: 'v1' });
    expect(addPendingRelease(pending, { dataset_id: 'd1', name: 'v1' }).pending_releases).toEqual([{ dataset_id: 'd1', name: 'v1' }]);
    expect(addMount(pending, 'v1', 'A', where).state.pending_releases).toEqual([]);
  });

  it('does not change the state it was given', () => {
    const state = mountAll(emptyMountState(), [['v1', 'A']]);
    const copy = structuredClone(state);
    addMount(state, 'v1', 'A', where);
    removeMount(state, 'v1', 'A');
    expect(state).toEqual(copy);
  });
});

import { describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { discoverRaw, type DiscoverDeps } from './discover.ts';
import type { DivergedCopyInfo, ZfsDatasetInfo, ZfsSnapshotInfo } from './zfs/types.ts';

const KEPT: DivergedCopyInfo = { datasetId: 'a', name: 'p/drover-diverged/a-g3', generation: 3, usedBytes: 10 };
const REJOINED: DivergedCopyInfo = { rejoined: true, datasetId: 'b', name: 'p/drover/b', generation: 4, usedBytes: 0 };
const LISTED = { datasets: [] as ZfsDatasetInfo[], snapshots: {} as Record<string, ZfsSnapshotInfo[]> };

function deps(store: DiscoverDeps['store'], calls: string[]): DiscoverDeps {
  return { store, runtime: { listContainers: async () => (calls.push('containers'), []) }, nodeUuid: 'n', log: silentLogger() };
}

describe('discoverRaw', () => {
  it('reads the rejoined copies with the listing of the pool and the kept ones alone, where the store can: two reads of zfs, not three', async () => {
    const calls: string[] = [];
    const raw = await discoverRaw(
      deps(
        {
          listAll: async () => (calls.push('listAll'), { ...LISTED, rejoined: [REJOINED] }),
          listDiverged: async () => (calls.push('listDiverged'), [KEPT, REJOINED]),
          listKeptDiverged: async () => (calls.push('listKeptDiverged'), [KEPT]),
        },
        calls,
      ),
    );
    expect(raw.diverged).toEqual([KEPT, REJOINED]);
    expect(calls.filter((c) => c !== 'containers').sort()).toEqual(['listAll', 'listKeptDiverged']);
  });

  it('leaves the copies unknown (null), never empty, when either read fails', async () => {
    const failing = async (): Promise<never> => {
      throw new Error('zfs failed');
    };
    const noPool = await discoverRaw(deps({ listAll: failing, listDiverged: async () => [KEPT], listKeptDiverged: async () => [KEPT] }, []));
    expect(noPool.datasets).toBeNull();
    expect(noPool.diverged).toBeNull();
    const noKept = await discoverRaw(deps({ listAll: async () => ({ ...LISTED, rejoined: [REJOINED] }), listDiverged: async () => [KEPT], listKeptDiverged: failing }, []));
    expect(noKept.datasets).toEqual([]);
    expect(noKept.diverged).toBeNull();
  });

  it('asks listDiverged as before where the store has no separate read of the kept copies', async () => {
    const calls: string[] = [];
    const raw = await discoverRaw(deps({ listAll: async () => (calls.push('listAll'), LISTED), listDiverged: async () => (calls.push('listDiverged'), [KEPT, REJOINED]) }, calls));
    expect(raw.diverged).toEqual([KEPT, REJOINED]);
    expect(calls.filter((c) => c !== 'containers').sort()).toEqual(['listAll', 'listDiverged']);
    // No store of copies at all: nothing said about them.
    expect('diverged' in (await discoverRaw(deps({ listAll: async () => LISTED }, [])))).toBe(false);
  });
});

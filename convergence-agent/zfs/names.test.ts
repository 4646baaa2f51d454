import { describe, expect, it } from 'vitest';
import { datasetIdOf, datasetPath, divergedPath, parseDivergedPath, parseSnapshotPath, snapshotPath, assertHoldTag, assertPoolName } from './names.ts';

const id = '6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('drover ZFS names', () => {
  it('builds dataset and snapshot names inside the pool\'s drover root', () => {
    expect(datasetPath('tank', id)).toBe(`tank/drover/${id}`);
    expect(snapshotPath('tank', id, 'drover-20260101T000000000Z-0001')).toBe(`tank/drover/${id}@drover-20260101T000000000Z-0001`);
  });

  it('rejects anything a shell or zfs could misread, before building a name', () => {
    const bad: Array<() => unknown> = [
      () => datasetPath('tank', 'x; reboot'),
      () => datasetPath('tank', id.toUpperCase()),
      () => datasetPath('tank/other', id),
      () => datasetPath('-f', id),
      () => datasetPath('mirror0', id),
      () => snapshotPath('tank', id, 'bad name'),
      () => snapshotPath('tank', id, 'drover-a+b'),
      () => snapshotPath('tank', id, 'drover-$(id)'),
      () => snapshotPath('tank', id, 'manual-1'),
      () => snapshotPath('tank', id, "drover-'"),
      () => assertHoldTag('keep'),
      () => assertHoldTag('drover- x'),
      () => assertPoolName(''),
    ];
    for (const fn of bad) expect(codeOf(fn)).toBe('DROVER_ZFS_INVALID_NAME');
  });

  it('recognises only its own datasets and snapshots when parsing zfs output', () => {
    expect(datasetIdOf('tank', `tank/drover/${id}`)).toBe(id);
    expect(datasetIdOf('tank', 'tank/drover')).toBeNull();
    expect(datasetIdOf('tank', `tank/drover/${id}/child`)).toBeNull();
    expect(datasetIdOf('tank', `tank/other/${id}`)).toBeNull();
    expect(parseSnapshotPath('tank', `tank/drover/${id}@drover-1`)).toEqual({ datasetId: id, snapshot: 'drover-1' });
    expect(parseSnapshotPath('tank', `tank/drover/${id}@manual`)).toBeNull();
    expect(parseSnapshotPath('tank', `tank/drover/${id}@drover-bad name`)).toBeNull();
  });
});

describe('drover-diverged names (docs/DESIGN.md §18)', () => {
  const id = '0b6f2ee4-8a1e-4c39-9f53-3a1f4b0c9d11';
  it('builds and parses <pool>/drover-diverged/<id>-g<generation>', () => {
    expect(divergedPath('tank', id, 7)).toBe(`tank/drover-diverged/${id}-g7`);
    expect(parseDivergedPath('tank', `tank/drover-diverged/${id}-g7`)).toEqual({ datasetId: id, generation: 7 });
    expect(parseDivergedPath('tank', `tank/drover/${id}`)).toBeNull();
    expect(parseDivergedPath('tank', `tank/drover-diverged/${id}`)).toBeNull();
    expect(parseDivergedPath('tank', `tank/drover-diverged/not-a-uuid-g7`)).toBeNull();
    expect(() => divergedPath('tank', id, -1)).toThrow(/invalid generation/);
    expect(() => divergedPath('tank', 'x;rm', 1)).toThrow();
  });
});

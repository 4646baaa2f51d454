import { describe, expect, it } from 'vitest';
import type { Desired } from '#common/model.ts';
import { applyRecord, decodeLine, encodeRecord } from './journal.ts';
import { emptyDesired, validateDesired } from './validate.ts';

const uuid = (i: number) => `0000000d-0000-4000-8000-${String(i).padStart(12, '0')}`;
const NODE = '00000001-0000-4000-8000-000000000001';
const dataset = (i: number, name = `vol${i}`) => ({ dataset_id: uuid(i), primary: NODE, metadata: { name } });
const withDatasets = (d: Desired, datasets: unknown[]): Desired => validateDesired({ ...d, datasets });

function roundTrip(before: Desired, after: Desired): { line: string; replayed: unknown } {
  const line = encodeRecord(1, 2, 'tag', before, after);
  const record = decodeLine(line.slice(0, -1));
  expect(record).not.toBeNull();
  return { line, replayed: applyRecord(before, record!) };
}

describe('journal records', () => {
  const base = withDatasets(emptyDesired(), Array.from({ length: 50 }, (_, i) => dataset(i)));

  it('write only the entry that changed, and replay to the same document', () => {
    const after = withDatasets(base, base.datasets.map((d, i) => (i === 17 ? dataset(17, 'renamed') : d)));
    const { line, replayed } = roundTrip(base, after);
    expect(line).toContain('renamed');
    expect(line).not.toContain(uuid(16));
    expect(line.length).toBeLessThan(300);
    expect(replayed).toEqual(after);
  });

  it('replay appends, deletions and changes at both ends', () => {
    const cases: unknown[][] = [
      [...base.datasets, dataset(100), dataset(101)],
      base.datasets.slice(1),
      base.datasets.slice(0, -1),
      base.datasets.filter((_, i) => i % 7 !== 3),
      [dataset(200), ...base.datasets.slice(1, -1), dataset(201)],
      [],
    ];
    for (const list of cases) {
      const after = withDatasets(base, list);
      expect(roundTrip(base, after).replayed).toEqual(after);
    }
  });

  it('refer to the kept entries of a rewritten middle instead of copying them', () => {
    // A deploy rebuilding a stretch of the list: entries moved, a few new.
    const middle = base.datasets.slice(10, 40);
    const list = [...base.datasets.slice(0, 10), dataset(300), ...middle.slice(15), ...middle.slice(0, 15), dataset(301), ...base.datasets.slice(40)];
    const after = withDatasets(base, list);
    const { line, replayed } = roundTrip(base, after);
    expect(line).toContain('[25,40]');
    expect(line).toContain('[10,25]');
    expect(replayed).toEqual(after);
  });

  it('leave out the collections that did not change', () => {
    const after = validateDesired({ ...base, nodes: [{ uuid: NODE, host: '127.0.0.1', labels: {}, transfer: {} }] });
    const line = encodeRecord(4, 7, 'tag', base, after);
    expect(JSON.parse(line.slice(9))).toMatchObject({ from: 4, to: 7, changes: { nodes: { at: 0, remove: 0 } } });
    expect(line).not.toContain('datasets');
  });

  it('are refused when torn or damaged', () => {
    const after = withDatasets(base, [...base.datasets, dataset(100)]);
    const line = encodeRecord(1, 2, 'tag', base, after).slice(0, -1);
    expect(decodeLine(line)).not.toBeNull();
    expect(decodeLine(line.slice(0, -5))).toBeNull();
    expect(decodeLine(line.replace('vol100', 'vol101'))).toBeNull();
    expect(decodeLine('')).toBeNull();
  });

  it('do not apply to a document they do not fit', () => {
    const after = withDatasets(base, base.datasets.map((d, i) => (i === 45 ? dataset(45, 'x') : d)));
    const record = decodeLine(encodeRecord(1, 2, 'tag', base, after).slice(0, -1))!;
    expect(() => applyRecord(emptyDesired(), record)).toThrow(/does not fit/);
  });
});

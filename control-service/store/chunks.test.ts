import { describe, expect, it } from 'vitest';
import { chunkList, MAX_ENTRIES } from './chunks.ts';

const dataset = (i: number, name = `vol${i}`) => Object.freeze({ dataset_id: `0000000d-0000-4000-8000-${String(i).padStart(12, '0')}`, primary: 'n1', metadata: { name } });
const list = (n: number) => Array.from({ length: n }, (_, i) => dataset(i));

describe('the etcd store’s chunks (docs/DESIGN.md §28)', () => {
  it('cuts a collection into chunks that hold every entry once, in order, none past the limits', () => {
    const entries = list(10_000);
    const chunks = chunkList('datasets', entries);
    expect(chunks.flatMap((c) => c.entries)).toEqual(entries);
    expect(Math.max(...chunks.map((c) => c.entries.length))).toBeLessThanOrEqual(MAX_ENTRIES);
    expect(chunks.length).toBeGreaterThan(50);
    expect(chunks.every((c) => JSON.parse(c.text).length === c.entries.length)).toBe(true);
  });

  it('changes one chunk when an entry is inserted, removed or replaced, not the chunks after it', () => {
    const entries = list(5000);
    const before = chunkList('datasets', entries);
    const hashes = new Set(before.map((c) => c.hash));
    const changed = (after: readonly { hash: string }[]) => after.filter((c) => !hashes.has(c.hash)).length;
    expect(changed(chunkList('datasets', [...entries.slice(0, 100), dataset(99_999), ...entries.slice(100)], before))).toBeLessThanOrEqual(2);
    expect(changed(chunkList('datasets', entries.filter((_, i) => i !== 2500), before))).toBeLessThanOrEqual(2);
    expect(changed(chunkList('datasets', entries.map((e, i) => (i === 4000 ? dataset(4000, 'renamed') : e)), before))).toBe(1);
  });

  it('reuses a chunk of the very same entries without encoding it again', () => {
    const entries = list(1000);
    const before = chunkList('datasets', entries);
    const after = chunkList('datasets', [...entries, dataset(5000)], before);
    expect(after.slice(0, -1).filter((c, i) => c === before[i]).length).toBe(before.length - 1);
  });
});

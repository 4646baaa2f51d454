/**
 * How the etcd store splits the desired configuration into values (docs/DESIGN.md §28). Pure.
 *
 * Each collection is cut into chunks at content-defined boundaries: a chunk ends after an
 * entry whose identity (dataset id, application name, …) hashes to 0 mod `AVERAGE`, or once it
 * holds `MAX_ENTRIES` entries or `MAX_BYTES` bytes. A chunk is named by a hash of its text, so
 * an unchanged chunk keeps its key: a write stores only the chunks that changed (a move: the
 * last chunk of `migrations`), and an insertion or removal changes one chunk, not every chunk
 * after it as position-based cuts would.
 */
import { createHash } from 'node:crypto';
import type { Desired } from '#common/model.ts';
import { entryJson } from './encode.ts';

/** Entries per chunk on average. */
export const AVERAGE = 64;
export const MAX_ENTRIES = 256;
/** A chunk is closed past this size; etcd refuses requests over 1.5 MiB. */
export const MAX_BYTES = 256 * 1024;

export interface Chunk {
  /** Hash of `text`: the chunk's name in etcd. */
  readonly hash: string;
  /** The JSON array of the entries. */
  readonly text: string;
  readonly entries: readonly object[];
}

export const COLLECTIONS = ['nodes', 'datasets', 'applications', 'leases', 'migrations'] as const satisfies readonly (keyof Desired)[];
export type Collection = (typeof COLLECTIONS)[number];

const IDENTITY: Record<Collection, string> = { nodes: 'uuid', datasets: 'dataset_id', applications: 'name', leases: 'dataset_id', migrations: 'id' };

const ends = new WeakMap<object, boolean>();

/** Whether a chunk ends after `entry` by its identity (cached per frozen entry). */
function endsAfter(collection: Collection, entry: object): boolean {
  let end = ends.get(entry);
  if (end === undefined) {
    const id = String((entry as Record<string, unknown>)[IDENTITY[collection]] ?? entryJson(entry));
    end = fnv1a(id) % AVERAGE === 0;
    ends.set(entry, end);
  }
  return end;
}

/**
 * Cuts `list` into chunks. `previous` (the chunks of the collection as last stored) lets a
 * chunk made of the very same entries keep its text and hash without encoding them again.
 */
export function chunkList(collection: Collection, list: readonly object[], previous: readonly Chunk[] = []): Chunk[] {
  const byFirst = new Map<object, Chunk>();
  for (const chunk of previous) if (chunk.entries.length > 0) byFirst.set(chunk.entries[0]!, chunk);
  const out: Chunk[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < list.length; i++) {
    const entry = list[i]!;
    bytes += entryJson(entry).length + 1;
    const last = i === list.length - 1;
    if (!last && !endsAfter(collection, entry) && i - start + 1 < MAX_ENTRIES && bytes < MAX_BYTES) continue;
    out.push(makeChunk(list.slice(start, i + 1), byFirst));
    start = i + 1;
    bytes = 0;
  }
  return out;
}

function makeChunk(entries: readonly object[], byFirst: Map<object, Chunk>): Chunk {
  const before = byFirst.get(entries[0]!);
  if (before && before.entries.length === entries.length && before.entries.every((e, i) => e === entries[i])) return before;
  const text = '[' + entries.map(entryJson).join(',') + ']';
  return { hash: createHash('sha256').update(text).digest('hex').slice(0, 32), text, entries };
}

/** FNV-1a, 32 bits: a cheap, stable hash of an identity. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

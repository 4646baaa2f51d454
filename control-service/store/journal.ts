/**
 * The file store's journal records (file-store.ts writes and replays them): one committed
 * change of the desired configuration, as what changed in each collection, so a write costs
 * what changed rather than the whole document.
 *
 * A record is one line: `<crc32 of the JSON, 8 hex digits> <JSON>\n`, the JSON being
 * `{"from": F, "to": T, "tag": "<tag at T>", "changes": {<collection>: Splice}}`. It turns
 * the document at version F into the one at version T (a group commit spans several
 * versions). A `Splice` `{at, remove, insert}` replaces `remove` entries from position `at`
 * by `insert`, whose items are new entries (JSON objects) or `[a, b]`, the entries at
 * positions a…b-1 of the list before the change (entries are objects, never arrays).
 * Updates keep unchanged entries as the same objects (validate.ts), so the splice is found
 * by identity: the common head and tail are skipped, and only the middle is written.
 *
 * A line whose checksum does not match, or with no newline, was being written when the
 * process died: it was never acknowledged (the store acknowledges after fsync).
 */
import { crc32 } from 'node:zlib';
import type { Desired } from '#common/model.ts';
import { entryJson } from './encode.ts';

export const COLLECTIONS = ['nodes', 'datasets', 'applications', 'leases', 'migrations'] as const satisfies readonly (keyof Desired)[];
type Collection = (typeof COLLECTIONS)[number];

type Item = object | [number, number];

export interface Splice {
  at: number;
  remove: number;
  insert: Item[];
}

export interface JournalRecord {
  from: number;
  to: number;
  tag: string;
  changes: Partial<Record<Collection, Splice>>;
}

/** The record's line (with its checksum and newline), from the document before and after. */
export function encodeRecord(from: number, to: number, tag: string, before: Desired, after: Desired): string {
  const parts: string[] = [];
  for (const key of COLLECTIONS) {
    if (before[key] === after[key]) continue;
    parts.push(`"${key}":${spliceJson(before[key], after[key])}`);
  }
  const json = `{"from":${from},"to":${to},"tag":${JSON.stringify(tag)},"changes":{${parts.join(',')}}}`;
  return `${checksum(json)} ${json}\n`;
}

function spliceJson(before: readonly object[], after: readonly object[]): string {
  const shorter = Math.min(before.length, after.length);
  let head = 0;
  while (head < shorter && before[head] === after[head]) head++;
  let tail = 0;
  while (tail < shorter - head && before[before.length - 1 - tail] === after[after.length - 1 - tail]) tail++;
  const removed = before.length - tail - head;
  const items: string[] = [];
  // Entries of the middle that were already there (a deploy keeps most): referenced, not copied.
  let where: Map<object, number> | null = null;
  let runStart = -1;
  let runEnd = -1;
  for (let i = head; i < after.length - tail; i++) {
    const entry = after[i]!;
    if (where === null) {
      where = new Map();
      for (let j = head; j < head + removed; j++) where.set(before[j]!, j);
    }
    const j = where.get(entry);
    if (j !== undefined && runEnd === j) {
      runEnd = j + 1;
      continue;
    }
    if (runStart >= 0) items.push(`[${runStart},${runEnd}]`);
    runStart = runEnd = -1;
    if (j !== undefined) {
      runStart = j;
      runEnd = j + 1;
    } else items.push(entryJson(entry));
  }
  if (runStart >= 0) items.push(`[${runStart},${runEnd}]`);
  return `{"at":${head},"remove":${removed},"insert":[${items.join(',')}]}`;
}

/** The JSON of a line, or null when the line is torn or damaged (its checksum fails). */
export function decodeLine(line: string): JournalRecord | null {
  const space = line.indexOf(' ');
  if (space !== 8) return null;
  const json = line.slice(9);
  if (line.slice(0, 8) !== checksum(json)) return null;
  let record: unknown;
  try {
    record = JSON.parse(json);
  } catch {
    return null;
  }
  return isRecord(record) ? record : null;
}

/**
 * The document a record leads to, from the one at `record.from` (entries not validated: the
 * caller validates the result).
 * @throws Error when a splice does not fit the document (the journal does not belong to it).
 */
export function applyRecord(desired: Record<Collection, readonly unknown[]>, record: JournalRecord): Record<Collection, readonly unknown[]> {
  const out = { ...desired };
  for (const key of COLLECTIONS) {
    const splice = record.changes[key];
    if (!splice) continue;
    const before = desired[key];
    if (splice.at + splice.remove > before.length) throw new Error(`the change of ${key} at version ${record.to} does not fit a list of ${before.length}`);
    const middle: unknown[] = [];
    for (const item of splice.insert) {
      if (!Array.isArray(item)) middle.push(item);
      else {
        const [a, b] = item as [number, number];
        if (!(a >= splice.at && b <= splice.at + splice.remove && a < b)) throw new Error(`the change of ${key} at version ${record.to} refers to entries it does not replace`);
        for (let j = a; j < b; j++) middle.push(before[j]);
      }
    }
    out[key] = [...before.slice(0, splice.at), ...middle, ...before.slice(splice.at + splice.remove)];
  }
  return out;
}

function checksum(json: string): string {
  return crc32(json).toString(16).padStart(8, '0');
}

function isRecord(value: unknown): value is JournalRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  if (!Number.isInteger(r.from) || !Number.isInteger(r.to) || typeof r.tag !== 'string') return false;
  if (typeof r.changes !== 'object' || r.changes === null) return false;
  for (const [key, splice] of Object.entries(r.changes)) {
    if (!(COLLECTIONS as readonly string[]).includes(key) || typeof splice !== 'object' || splice === null) return false;
    const s = splice as Record<string, unknown>;
    if (!Number.isInteger(s.at) || !Number.isInteger(s.remove) || (s.at as number) < 0 || (s.remove as number) < 0 || !Array.isArray(s.insert)) return false;
    for (const item of s.insert) {
      if (typeof item !== 'object' || item === null) return false;
      if (Array.isArray(item) && !(item.length === 2 && Number.isInteger(item[0]) && Number.isInteger(item[1]))) return false;
    }
  }
  return true;
}

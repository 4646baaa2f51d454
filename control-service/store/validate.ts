/**
 * Whole-document validation of `Desired`, memoized per object.
 *
 * Parsing 10k applications and 10k datasets with zod takes ~100 ms, far too slow for every
 * write. Documents are immutable, so each entry is parsed with its zod schema the first time
 * the store sees it, then deep-frozen and remembered: a later document that reuses the
 * entry (the common case: an update changes one entry and keeps the others) skips it. The
 * result is the same as parsing the whole document, because a frozen entry cannot change
 * after it was parsed.
 */
import { z } from 'zod';
import { Application, Dataset, Lease, Migration, Node, type Desired } from '#common/model.ts';
import { replacedPositions } from '../desired/list-diff.ts';

const collections = {
  nodes: Node,
  datasets: Dataset,
  applications: Application,
  leases: Lease,
  migrations: Migration,
} as const satisfies Record<keyof Desired, z.ZodType>;

type Key = keyof typeof collections;
const keys = Object.keys(collections) as Key[];

/** Entries already parsed, per collection (an entry is valid only where it was parsed). */
const seen = Object.fromEntries(keys.map((k) => [k, new WeakSet<object>()])) as Record<Key, WeakSet<object>>;
const documents = new WeakSet<object>();
/** Lists already validated whole (frozen), per collection: a document that reuses one skips it. */
const lists = Object.fromEntries(keys.map((k) => [k, new WeakSet<object>()])) as Record<Key, WeakSet<object>>;

/**
 * Validates a whole document and returns it frozen, with zod defaults applied.
 * @throws z.ZodError whose issues carry paths from the document root.
 */
export function validateDesired(doc: unknown): Desired {
  if (typeof doc === 'object' && doc !== null && documents.has(doc)) return doc as Desired;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new z.ZodError([{ code: 'custom', path: [], message: 'the configuration must be an object', input: doc }]);
  }
  const issues: z.core.$ZodIssue[] = [];
  const unknown = Object.keys(doc).filter((k) => !(k in collections));
  if (unknown.length > 0) {
    issues.push({ code: 'unrecognized_keys', keys: unknown, path: [], message: `Unrecognized keys: ${unknown.join(', ')}`, input: doc } as z.core.$ZodIssue);
  }
  const out: Record<string, readonly unknown[]> = {};
  for (const key of keys) {
    const list = (doc as Record<string, unknown>)[key] ?? [];
    if (!Array.isArray(list)) {
      issues.push({ code: 'custom', path: [key], message: 'must be an array', input: list });
      continue;
    }
    out[key] = parseList(key, list, issues);
  }
  if (issues.length > 0) throw new z.ZodError(issues);
  const result = Object.freeze(out) as unknown as Desired;
  documents.add(result);
  return result;
}

/** Per collection, the last list validated whole: a list that replaces a few of its entries is checked there only. */
const lastList = new Map<Key, WeakRef<readonly unknown[]>>();

function parseList(key: Key, list: readonly unknown[], issues: z.core.$ZodIssue[]): readonly unknown[] {
  const schema: z.ZodType = collections[key];
  if (lists[key].has(list)) return list;
  const issuesBefore = issues.length;
  const known = seen[key];
  // A list that replaces a few entries of the last one validated whole (a handoff) is
  // checked at those positions only; the others were valid there.
  const previous = lastList.get(key)?.deref();
  const positions = previous === undefined ? null : replacedPositions(previous, list);
  const next: unknown[] = positions === null ? new Array(list.length) : list.slice();
  let reused = positions === null ? 0 : list.length - positions.length;
  for (const i of positions ?? list.keys()) {
    const entry = list[i];
    if (typeof entry === 'object' && entry !== null && known.has(entry)) {
      next[i] = entry;
      reused++;
      continue;
    }
    const r = schema.safeParse(entry);
    if (!r.success) {
      for (const issue of r.error.issues) issues.push({ ...issue, path: [key, i, ...issue.path] });
      continue;
    }
    const frozen = deepFreeze(r.data as object);
    known.add(frozen);
    next[i] = frozen;
  }
  // An unchanged list keeps its identity, so caches keyed by it (agent views, JSON) still hit.
  const out = reused === list.length && Object.isFrozen(list) ? list : Object.freeze(next);
  if (issues.length > issuesBefore) return out;
  lists[key].add(out);
  lastList.set(key, new WeakRef(out));
  return out;
}


function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) {
    if (typeof child === 'object' && child !== null && !Object.isFrozen(child)) deepFreeze(child);
  }
  return Object.freeze(value);
}

/** An empty, valid document. */
export function emptyDesired(): Desired {
  return validateDesired({ nodes: [], datasets: [], applications: [], leases: [], migrations: [] });
}

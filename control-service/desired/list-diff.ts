/**
 * What changed between two versions of a collection, found by identity: documents are
 * immutable and keep unchanged entries as the same objects, so comparing references finds
 * the replaced positions (a pointer scan: ~10 µs for 10k entries). Caches derived from a
 * collection use it to update the previous version's result instead of rebuilding it.
 */

/** Most replaced positions worth updating for; beyond it, rebuilding is as cheap. */
const LIMIT = 64;

/**
 * The positions where `after` holds another entry than `before`, when both have the same
 * length and at most `limit` positions differ; null otherwise (rebuild).
 */
export function replacedPositions<T>(before: readonly T[], after: readonly T[], limit = LIMIT): number[] | null {
  if (before.length !== after.length) return null;
  const out: number[] = [];
  for (let i = 0; i < after.length; i++) {
    if (before[i] === after[i]) continue;
    if (out.length === limit) return null;
    out.push(i);
  }
  return out;
}

/**
 * `replacedPositions`, when also each replaced entry keeps its key (an entry changed in
 * place: an application flipped to another node, a dataset's new primary).
 */
export function replacedInPlace<T>(before: readonly T[], after: readonly T[], key: (entry: T) => unknown): number[] | null {
  const positions = replacedPositions(before, after);
  if (positions === null) return null;
  for (const i of positions) if (key(before[i]!) !== key(after[i]!)) return null;
  return positions;
}

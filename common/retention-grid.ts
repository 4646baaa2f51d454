/**
 * Retention grids in zrepl's notation (pure): `1x1m(keep=all) | 24x1h | 7x1d`.
 *
 * A grid is a list of intervals laid end to end going back in time from "now" (the newest
 * snapshot's time, as zrepl does, so a replica that stopped receiving does not prune itself
 * empty): `24x1h` is 24 consecutive one-hour intervals. Each interval keeps its `keep`
 * oldest snapshots (default 1; `keep=all` keeps every one), so the copies kept are spread
 * over the interval rather than bunched at its young end. Snapshots older than the whole
 * grid are not kept.
 *
 * The grid only proposes: callers add their own rules on top (never the newest snapshot,
 * never the newest one shared with a replica, never a held one).
 */

export interface GridInterval {
  /** Length of one interval, ms. */
  lengthMs: number;
  /** Snapshots kept per interval; null: all. */
  keep: number | null;
}

export interface RetentionGrid {
  /** The grid as written, normalized (`1x1m(keep=all) | 24x1h`). */
  text: string;
  /** Each `NxD` expanded into N intervals, newest first. */
  intervals: GridInterval[];
}

export type GridParse = { ok: true; grid: RetentionGrid } | { ok: false; errors: string[] };

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** Bound on the expanded grid, so a typo like `100000x1s` cannot make pruning slow. */
export const MAX_GRID_INTERVALS = 10_000;
const TERM = /^(\d{1,5})\s*x\s*(\d{1,6})\s*(s|m|h|d|w)\s*(?:\(\s*keep\s*=\s*(all|\d{1,5})\s*\))?$/;

/**
 * Parses a grid. Every term is checked and every problem reported (one message each, naming
 * the term); an empty grid is refused.
 */
export function parseRetentionGrid(text: string): GridParse {
  const errors: string[] = [];
  const intervals: GridInterval[] = [];
  const normalized: string[] = [];
  const terms = text.split('|').map((t) => t.trim());
  if (terms.length === 1 && terms[0] === '') return { ok: false, errors: ['a retention grid needs at least one term, e.g. "1x1m(keep=all) | 24x1h | 7x1d"'] };
  for (const term of terms) {
    const m = TERM.exec(term);
    if (!m) {
      errors.push(`"${term}" is not a grid term: write <count>x<duration><s|m|h|d|w>, optionally (keep=all) or (keep=N), e.g. "24x1h"`);
      continue;
    }
    const count = Number(m[1]);
    const length = Number(m[2]) * UNIT_MS[m[3]!]!;
    const keep = m[4] === undefined ? 1 : m[4] === 'all' ? null : Number(m[4]);
    if (count < 1) errors.push(`"${term}": the count must be at least 1`);
    if (length < 1_000) errors.push(`"${term}": the duration must be at least 1s`);
    if (keep !== null && keep < 1) errors.push(`"${term}": keep must be at least 1, or all`);
    if (intervals.length + count > MAX_GRID_INTERVALS) {
      errors.push(`the grid has more than ${MAX_GRID_INTERVALS} intervals; use longer intervals`);
      break;
    }
    for (let i = 0; i < count; i++) intervals.push({ lengthMs: length, keep });
    normalized.push(`${count}x${m[2]}${m[3]}${m[4] === undefined ? '' : `(keep=${m[4]})`}`);
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, grid: { text: normalized.join(' | '), intervals } };
}

export interface GridSnapshot {
  name: string;
  /** Creation time, ms since the epoch. */
  createdAt: number;
}

/**
 * The names the grid keeps among `snapshots`. "Now" is the newest snapshot's time unless
 * given. Snapshots are placed by age: interval i covers ages [start_i, start_i + length_i),
 * newest interval first; a snapshot whose age equals an interval's end belongs to the next.
 */
export function keptByGrid(grid: RetentionGrid, snapshots: readonly GridSnapshot[], now?: number): Set<string> {
  const kept = new Set<string>();
  if (snapshots.length === 0) return kept;
  const at = now ?? Math.max(...snapshots.map((s) => s.createdAt));
  // Oldest first within each interval.
  const byAge = [...snapshots].sort((a, b) => a.createdAt - b.createdAt || a.name.localeCompare(b.name));
  let start = 0;
  const buckets: GridSnapshot[][] = grid.intervals.map(() => []);
  const ends: number[] = [];
  for (const interval of grid.intervals) {
    start += interval.lengthMs;
    ends.push(start);
  }
  for (const s of byAge) {
    const age = Math.max(0, at - s.createdAt);
    // Binary search for the first interval whose end is beyond the age.
    let lo = 0;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ends[mid]! > age) hi = mid;
      else lo = mid + 1;
    }
    if (lo < ends.length) buckets[lo]!.push(s);
  }
  grid.intervals.forEach((interval, i) => {
    const bucket = buckets[i]!;
    const n = interval.keep === null ? bucket.length : Math.min(interval.keep, bucket.length);
    for (let k = 0; k < n; k++) kept.add(bucket[k]!.name);
  });
  return kept;
}

/** The default grid of drover's replication snapshots, for both sides. */
export const DEFAULT_RETENTION_GRID = '1x1m(keep=all) | 24x1h | 7x1d';

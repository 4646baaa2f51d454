/**
 * What `drover move` shows while a migration runs (docs/DESIGN.md §27). Pure: a migration
 * record and what this command observed of it in, text out.
 *
 * The bar is the current pre-copy round's: its bytes against its own expected size (the
 * record's `round_bytes_sent` / `round_bytes_total`), never the running total of every round
 * against a total that grows each round. The rate is the one seen over the last few seconds
 * of the round (the record's own round rate until two samples are in); the ETA is what is
 * left of the round at that rate.
 */
import type { Migration, MigrationPhase } from '#common/model.ts';
import { bytes, duration, rate } from './format.ts';

/** One poll's reading of the current round, on this command's clock. */
export interface Sample {
  at: number;
  round: number;
  sent: number;
}

/** The window the shown rate is measured over. */
export const RATE_WINDOW_MS = 5_000;

/** The bytes the current round has sent and is expected to send; `scope` says which figures they are. */
export interface RoundFigures {
  round: number;
  sent: number;
  total: number | null;
  /** `round`: this round's own figures; `all`: an older agent's running totals only. */
  scope: 'round' | 'all';
}

export function roundFigures(m: Migration): RoundFigures {
  if (m.round_bytes_sent !== undefined) return { round: m.round, sent: m.round_bytes_sent, total: m.round_bytes_total ?? null, scope: 'round' };
  return { round: m.round, sent: m.bytes_sent, total: m.bytes_total, scope: 'all' };
}

/** Keeps the samples of the latest round within the rate window (and one before it, to span it). */
export function addSample(samples: readonly Sample[], next: Sample): Sample[] {
  const same = samples.filter((s) => s.round === next.round && s.sent <= next.sent);
  const kept = same.filter((s) => next.at - s.at <= RATE_WINDOW_MS);
  const before = same.filter((s) => next.at - s.at > RATE_WINDOW_MS).at(-1);
  return [...(before === undefined ? [] : [before]), ...kept, next];
}

/**
 * Bytes per second over the samples (oldest to newest), when they span at least a second and
 * bytes moved; else `fallback` (the record's rate over the round).
 */
export function observedRate(samples: readonly Sample[], fallback: number | null): number | null {
  const first = samples[0];
  const last = samples.at(-1);
  if (first === undefined || last === undefined || last.at - first.at < 1_000 || last.sent === first.sent) return fallback;
  return ((last.sent - first.sent) * 1000) / (last.at - first.at);
}

/** `[██████░░░░░░]`: `fraction` of `width` cells filled (clamped to 0–1). */
export function bar(fraction: number, width: number): string {
  const cells = Math.max(1, width);
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * cells);
  return `[${'█'.repeat(filled)}${'░'.repeat(cells - filled)}]`;
}

/** `4 s`, `1m05s`; null (no rate, or nothing left to measure) → `-`. */
export function eta(left: number, bytesPerSecond: number | null): string {
  if (bytesPerSecond === null || bytesPerSecond <= 0) return '-';
  const ms = (Math.max(0, left) / bytesPerSecond) * 1000;
  return ms < 1000 ? '<1 s' : duration(Math.ceil(ms / 1000) * 1000).replace(/\.0 s$/, ' s');
}

/**
 * The redrawn line: `pre-copy  round 2  [████░░░░]  12.0 MiB / 24.0 MiB  50%  3.1 MiB/s  ETA 4 s`.
 * Outside pre-copy: the phase, how long it has lasted and the bytes sent in all. Fits `columns`
 * by narrowing the bar (at least 10 cells), to the same width on every redraw.
 */
export function progressLine(m: Migration, shownRate: number | null, phaseMs: number | null, columns = 80): string {
  if (m.phase !== 'pre-copy' || m.round === 0) {
    const parts = [m.phase.padEnd(8), phaseMs === null ? null : duration(phaseMs), m.bytes_sent > 0 ? `${bytes(m.bytes_sent)} sent in all` : null];
    return parts.filter((p) => p !== null).join('  ');
  }
  const f = roundFigures(m);
  const label = f.scope === 'round' ? `round ${f.round}` : `round ${f.round} (all rounds)`;
  if (f.total === null || f.total === 0) return [m.phase.padEnd(8), label, `${bytes(f.sent)} sent`, rate(shownRate)].join('  ');
  const fraction = Math.min(1, f.sent / f.total);
  const tail = [`${bytes(f.sent)} / ${bytes(f.total)}`, `${String(Math.floor(fraction * 100)).padStart(3)}%`, rate(shownRate), `ETA ${eta(f.total - f.sent, shownRate)}`].join('  ');
  const head = `${m.phase.padEnd(8)}  ${label}  `;
  // The same width on every redraw (the tail's length varies): what is left beside a 50-column tail.
  const width = Math.min(40, Math.max(10, columns - head.length - 50));
  return `${head}${bar(fraction, width)}  ${tail}`;
}

/** A phase and when it began and ended (null: still running), on the control service's clock. */
export interface PhaseSpan {
  phase: MigrationPhase;
  start: number;
  end: number | null;
}

/**
 * The phases the migration went through, from the record's timeline (`phases`, kept by the
 * control service); a record without one gets the phases this command saw, with the times it
 * saw them (`seen`).
 */
export function phaseSpans(m: Migration, seen: readonly { phase: MigrationPhase; at: number }[]): PhaseSpan[] {
  const marks = m.phases !== undefined ? [{ phase: 'pending' as MigrationPhase, at: m.started_at }, ...m.phases] : seen;
  return marks.map((mark, i) => ({ phase: mark.phase, start: mark.at, end: marks[i + 1]?.at ?? null }));
}

/**
 * The line printed once a phase ended: `✓ pre-copy    12.4 s  3 rounds, 40.1 MiB at 3.2 MiB/s`
 * (on a pipe, the one line per phase). The pre-copy line sums its rounds; the others say
 * how long they took.
 */
export function phaseDoneLine(span: PhaseSpan, m: Migration, bytesAtEnd: number | null): string {
  const ms = span.end === null ? null : span.end - span.start;
  const mark = span.phase === 'failed' ? '✗' : '✓';
  const parts = [`${mark} ${span.phase.padEnd(8)}`, (ms === null ? '' : duration(ms)).padStart(7)];
  if (span.phase === 'pre-copy') {
    const sent = bytesAtEnd ?? m.bytes_sent;
    const rounds = m.round;
    parts.push(`${rounds} round${rounds === 1 ? '' : 's'}, ${bytes(sent)}${ms !== null && ms > 0 ? ` at ${rate((sent * 1000) / ms)}` : ''}`);
  }
  if (span.phase === 'cutover' && m.cutover_ms !== null) parts.push(`application paused ${duration(m.cutover_ms)} in all (cutover to release)`);
  return parts.join('  ').trimEnd();
}

/**
 * The whole timeline, one line: `pending 0.2 s → pre-copy 12.4 s → cutover 310 ms → handoff
 * 1.1 s → release 0.8 s → done` (the summary after a move).
 */
export function timelineLine(spans: readonly PhaseSpan[]): string {
  return spans.map((s) => (s.end === null ? s.phase : `${s.phase} ${duration(s.end - s.start)}`)).join(' → ');
}

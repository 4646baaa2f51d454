/**
 * The moved application's start on the target, split by its own log (bench:migrate's
 * `appReady`, gate opened → first passing check). Redis logs each line with its own time to the
 * millisecond (`1:M 07 Dec 2026 14:53:17.412 * Ready to accept connections tcp`), on the same
 * machine's clock as the agents' pino lines, so the phase splits into:
 *   exec     the agent's `gate opened` (marker and FIFO written) → Redis's first line
 *            (`Redis is starting`: the gate woke, `exec`'d redis-server, which set itself up)
 *   load     → `DB loaded from …` (its data read; `loadSeconds` is Redis's own figure)
 *   afterLoad → `Ready to accept connections` (Redis listens while it loads and answers
 *            -LOADING; this is what it does after: its AOF opened for appending)
 *   probe    → the agent's `health changed` to healthy (the probes' cadence and cost)
 * A container's log with no such lines (another application) gives nulls.
 */
import { execa } from 'execa';

export interface AppStart {
  startingAt: number | null;
  loadedAt: number | null;
  /** Redis's own figure for reading its data, in seconds (its `DB loaded from …: 0.012 seconds`). */
  loadSeconds: number | null;
  readyAt: number | null;
}

export interface ReadySplit {
  exec: number | null;
  load: number | null;
  afterLoad: number | null;
  probe: number | null;
  loadSeconds: number | null;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
// `1:C 07 Dec 2026 14:53:17.412 # text`; Redis writes its container's local time, UTC here.
const LINE = /^\d+:[A-Z] (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2})\.(\d{3}) . (.*)$/;

/** Pure: the marks of the last Redis start in a container's log (the lines after its last `Redis is starting`). */
export function parseRedisStart(log: string): AppStart {
  const out: AppStart = { startingAt: null, loadedAt: null, loadSeconds: null, readyAt: null };
  for (const raw of log.split('\n')) {
    const m = LINE.exec(raw.trim());
    if (!m) continue;
    const month = MONTHS.indexOf(m[2]!);
    if (month < 0) continue;
    const at = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7]));
    const text = m[8]!;
    if (text.includes('Redis is starting')) {
      out.startingAt = at;
      out.loadedAt = null;
      out.loadSeconds = null;
      out.readyAt = null;
    } else if (/^DB loaded from /.test(text)) {
      out.loadedAt = at;
      const s = /: ([\d.]+) seconds/.exec(text);
      out.loadSeconds = s ? Number(s[1]) : null;
    } else if (text.startsWith('Ready to accept connections') && out.readyAt === null) {
      out.readyAt = at;
    }
  }
  return out;
}

/** Pure: `appReady` split at the application's own marks (see above). */
export function splitReady(start: AppStart, gateOpenedAt: number | null, healthyAt: number | null): ReadySplit {
  const since = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : a - b);
  // A Redis without data logs no `DB loaded` line: its load is nothing.
  const loadedAt = start.loadedAt ?? (start.readyAt !== null ? start.startingAt : null);
  return {
    exec: since(start.startingAt, gateOpenedAt),
    load: since(loadedAt, start.startingAt),
    afterLoad: since(start.readyAt, loadedAt),
    probe: since(healthyAt, start.readyAt),
    loadSeconds: start.loadSeconds,
  };
}

/** The container's log through its node's Docker, parsed; null when Docker cannot give it. */
export async function redisStartOf(dockerHost: string, container: string): Promise<AppStart | null> {
  const r = await execa('docker', ['-H', dockerHost, 'logs', container], { timeout: 30_000, reject: false, all: true });
  return r.exitCode === 0 ? parseRedisStart(r.all ?? '') : null;
}

/** One line: `exec 12 · load 310 (Redis: 0.290 s) · afterLoad 1 · probe 40`. */
export function describeSplit(s: ReadySplit): string {
  const n = (v: number | null): string => (v === null ? '?' : String(v));
  return `exec ${n(s.exec)} · load ${n(s.load)}${s.loadSeconds === null ? '' : ` (Redis: ${s.loadSeconds.toFixed(3)} s)`} · afterLoad ${n(s.afterLoad)} · probe ${n(s.probe)}`;
}

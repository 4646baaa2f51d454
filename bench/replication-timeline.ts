/**
 * `npx tsx bench/replication-timeline.ts <logs dir> [--interval <s>] [--top 12]`
 *
 * Where the replication lag's peaks come from, read from the logs a `bench:replication` run
 * leaves behind (its last line names the directory; info level is enough, debug adds the `zfs`
 * commands and the scheduler's own records). The lag the bench samples is, per replica, the
 * time since the newest snapshot the control service knows was taken; it is a saw tooth whose
 * tops come just before each new snapshot is known. Per replica and per step it lines up:
 *   taken     the time in the snapshot's name (when the scheduler named it, before `zfs snapshot`)
 *   engine    the engine's step began (prepare: the peer's state, the listing, two journal writes)
 *   stream    the stream began (`zfs send` → the receiver → `zfs receive`)
 *   received  the stream ended: what is left is `zfs receive`'s end and the verdict
 *   verified  the verdict came, the guid checked (`snapshot sent`)
 *   known     the first replication report the control service answered after it
 * and the top before it: known − the previous snapshot's taken. Prints the steps' phases as
 * p50 / p90 / max per interval phase, how the tops above 2 × interval split into those parts,
 * and with debug logs the `zfs` commands that ran in the slowest tops.
 * Reads files only; the cluster is long gone.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readLogLines, type LogLine } from './log-lines.ts';

const { values: flags, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '12' } } });
const dir = positionals[0];
if (!dir) throw new Error('usage: replication-timeline.ts <logs dir> [--top N]');
const topN = Number(flags.top);

type Rec = LogLine;
const records = readLogLines;

/** `drover-20261207T094640304Z-0078` → its time in ms; NaN for any other name. */
export function takenAt(snapshot: string): number {
  const m = /^drover-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z-\d+$/.exec(snapshot);
  if (!m) return NaN;
  return Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
}

function q(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}
const stats = (xs: number[]): string => (xs.length === 0 ? '—' : `${q(xs, 0.5).toFixed(0)} / ${q(xs, 0.9).toFixed(0)} / ${Math.max(...xs).toFixed(0)}`);

interface Step {
  replica: string;
  snapshot: string;
  taken: number;
  engine: number;
  stream: number;
  received: number;
  verified: number;
  known: number;
  /** The scheduler's step began (debug: `replication step`), NaN when not logged. */
  began: number;
}

const files = readdirSync(dir).filter((f) => f.endsWith('-agent.log'));
let primary = '';
let sent: Rec[] = [];
for (const f of files) {
  const s = records(join(dir, f)).filter((r) => r.msg === 'snapshot sent');
  if (s.length > sent.length) {
    sent = s;
    primary = f;
  }
}
if (sent.length === 0) throw new Error(`no 'snapshot sent' record in ${dir}`);
const primaryRecs = records(join(dir, primary));
const control = records(join(dir, 'control.log'));
const reports = control.filter((r) => r.msg === 'request answered' && r.url === '/v1/drover/agents/replication').map((r) => r.time).sort((a, b) => a - b);
// The bench's phases: each PUT of the replication policy starts one (off, on, off, on …).
const puts = control.filter((r) => r.msg === 'request answered' && r.method === 'PUT' && String(r.url).endsWith('/replication')).map((r) => r.time);
const schedulerSteps = primaryRecs.filter((r) => r.msg === 'replication step');
const zfs = new Map(files.map((f) => [f, records(join(dir, f)).filter((r) => r.msg === 'zfs command ran')]));
/** Debug: the prunings (either side) as [began, ended] windows, and each snapshot's `zfs snapshot` duration. */
const prunings = primaryRecs.filter((r) => r.msg === 'pruned by the grid' && Number.isFinite(Number(r.ms))).map((r) => ({ side: String(r.side), from: r.time - Number(r.ms), to: r.time }));
const snapshotMs = new Map<string, number>();
for (const c of zfs.get(primary) ?? []) {
  const args = c.args as string[];
  if (args[0] === 'snapshot') snapshotMs.set(String(args.at(-1)).split('@')[1] ?? '', Number(c.ms));
}

function firstReportAfter(t: number): number {
  for (const r of reports) if (r >= t) return r;
  return NaN;
}

const steps: Step[] = [];
for (const r of sent) {
  if (r.base === null) continue;
  const ms = Number(r.ms);
  const phases = r.steps as Record<string, number>;
  const verified = r.time;
  const stream = verified - ms;
  const snapshot = String(r.snapshot);
  const replica = String(r.peer);
  const around = schedulerSteps.find((s) => s.snapshot === snapshot && s.replica === replica);
  steps.push({
    replica,
    snapshot,
    taken: takenAt(snapshot),
    engine: stream - Number(phases.prepare ?? 0),
    stream,
    received: stream + Number(phases.send ?? 0),
    verified,
    known: firstReportAfter(verified),
    began: around ? around.time - Number(around.totalMs) : NaN,
  });
}

// On phases: from an even PUT (replicas: 2) to the next one.
const phases: Array<{ from: number; to: number }> = [];
for (let i = 1; i < puts.length; i += 2) phases.push({ from: puts[i]!, to: puts[i + 1] ?? Infinity });
if (phases.length === 0) phases.push({ from: -Infinity, to: Infinity });

for (const [n, phase] of phases.entries()) {
  // Each replica's first step of the phase ends its catch-up from the off phase (the bench
  // measures from the step after it): its steps from the second on, tops from the third.
  const byReplica = new Map<string, Step[]>();
  for (const s of steps.filter((x) => x.verified >= phase.from && x.verified < phase.to)) byReplica.set(s.replica, [...(byReplica.get(s.replica) ?? []), s]);
  for (const [replica, xs] of byReplica) byReplica.set(replica, xs.slice(1));
  const inPhase = [...byReplica.values()].flat();
  const spacings = [...byReplica.values()].flatMap((xs) => xs.slice(1).map((s, i) => s.taken - xs[i]!.taken));
  const interval = Math.max(1000, Math.round(q(spacings, 0.5) / 1000) * 1000);
  process.stdout.write(`\non phase ${n + 1} (interval ~${interval / 1000} s): ${inPhase.length} incremental steps, ${byReplica.size} replicas; ms p50 / p90 / max\n`);
  const part = (f: (s: Step) => number): number[] => inPhase.map(f).filter(Number.isFinite);
  process.stdout.write(`  snapshot spacing (a replica's successive snapshots)  ${stats(spacings)}\n`);
  if (inPhase.some((s) => Number.isFinite(s.began))) process.stdout.write(`  slot → scheduler step began                          (debug) ${stats(part((s) => s.began - s.taken))}\n`);
  process.stdout.write(`  taken → engine began (zfs snapshot, waits)           ${stats(part((s) => s.engine - s.taken))}\n`);
  process.stdout.write(`  engine prepare                                       ${stats(part((s) => s.stream - s.engine))}\n`);
  process.stdout.write(`  stream                                               ${stats(part((s) => s.received - s.stream))}\n`);
  process.stdout.write(`  stream end → verdict (zfs receive's end, guid read)  ${stats(part((s) => s.verified - s.received))}\n`);
  process.stdout.write(`  verified → known to the control service              ${stats(part((s) => s.known - s.verified))}\n`);
  process.stdout.write(`  taken → known                                        ${stats(part((s) => s.known - s.taken))}\n`);

  const around = schedulerSteps.filter((r) => r.time >= phase.from && r.time < phase.to);
  if (around.length > 0) {
    const k = (key: string): number[] => around.map((r) => Number(r[key])).filter(Number.isFinite);
    process.stdout.write(`  (debug) the scheduler's step: snapshot and waits ${stats(k('snapshotMs'))}, engine ${stats(k('replicateMs'))}, tail (settle, pruning) ${stats(k('tailMs'))}\n`);
  }
  const snaps = [...new Set(inPhase.map((x) => x.snapshot))].map((n) => snapshotMs.get(n)).filter((x): x is number => x !== undefined);
  if (snaps.length > 0) process.stdout.write(`  (debug) zfs snapshot                                 ${stats(snaps)}; ${snaps.filter((x) => x >= 500).length} of ${snaps.length} ≥ 500 ms\n`);
  const inWindow = prunings.filter((p) => p.from >= phase.from && p.to < phase.to);
  if (inWindow.length > 0) process.stdout.write(`  (debug) prunings: ${inWindow.map((p) => `${p.side} ${(p.to - p.from).toFixed(0)}`).join(', ')} ms\n`);
  // The saw tooth's tops, per replica: known(k) − taken(k−1), split into the spacing and the parts of step k.
  const tops: Array<{ s: Step; prev: Step; top: number }> = [];
  for (const xs of byReplica.values()) for (let i = 1; i < xs.length; i++) tops.push({ s: xs[i]!, prev: xs[i - 1]!, top: xs[i]!.known - xs[i - 1]!.taken });
  const high = tops.filter((t) => t.top > 2 * interval);
  // Time above 2 × interval, summed over the tops (what pushes the p99 of 100 ms samples over the target).
  const above = high.reduce((sum, t) => sum + Math.min(t.top - 2 * interval, t.s.known - t.prev.known), 0);
  const onMs = Math.max(...inPhase.map((s) => s.known)) - Math.min(...inPhase.map((s) => s.known));
  process.stdout.write(`  tops: p50 ${q(tops.map((t) => t.top), 0.5).toFixed(0)} ms, p90 ${q(tops.map((t) => t.top), 0.9).toFixed(0)}, max ${Math.max(...tops.map((t) => t.top)).toFixed(0)}; ${high.length} of ${tops.length} above 2 × interval, ${(above / 1000).toFixed(1)} s above it (${((100 * above) / (onMs * byReplica.size)).toFixed(1)} % of the samples)\n`);
  process.stdout.write('  the highest tops (ms): top = spacing + taken→engine + prepare + stream + verdict + report\n');
  for (const t of tops.sort((a, b) => b.top - a.top).slice(0, topN)) {
    const s = t.s;
    const line = [t.top, s.taken - t.prev.taken, s.engine - s.taken, s.stream - s.engine, s.received - s.stream, s.verified - s.received, s.known - s.verified].map((x) => x.toFixed(0).padStart(5));
    const snap = snapshotMs.get(s.snapshot);
    const pruned = prunings.filter((p) => p.from < s.known && p.to > t.prev.taken).map((p) => `${p.side} pruning ${(p.to - p.from).toFixed(0)} ms@+${(p.from - t.prev.taken).toFixed(0)}`);
    process.stdout.write(`   ${new Date(s.taken).toISOString().slice(11, 23)} ${s.replica.slice(0, 8)} ${line.join(' ')}${snap === undefined ? '' : `  snapshot ${snap} ms`}${pruned.length > 0 ? `  [${pruned.join(', ')}]` : ''}${slowZfs(t.prev.taken, s.known)}\n`);
  }
}

/** With debug logs: the zfs commands of ≥ 300 ms that ran between `from` and `to`, per node. */
function slowZfs(from: number, to: number): string {
  const out: string[] = [];
  for (const [f, cmds] of zfs) {
    for (const c of cmds) {
      const ms = Number(c.ms);
      const began = c.time - ms;
      if (ms >= 300 && began < to && c.time > from) out.push(`${f.slice(0, 2)} ${(c.args as string[])[0]} ${ms}@+${(began - from).toFixed(0)}`);
    }
  }
  return out.length === 0 ? '' : `  [${out.join(', ')}]`;
}

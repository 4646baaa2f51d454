/**
 * `npx tsx bench/replication-steps.ts <logs dir> [--since <ISO time>] [--until <ISO time>]`
 *
 * What a continuous-replication step is made of, read from the debug logs a
 * `DROVER_SERVICES_LOG_LEVEL=debug npm run bench:replication` run leaves behind (its last line
 * names the directory). Prints, for the primary (the agent that logged `snapshot sent`):
 *   - the steps' phases (the engine's `steps` record: prepare, send, settle, prune) and the
 *     scheduler's own time around them (`replication step`: snapshot wait, status, tail), as
 *     p50 / p90 / max, incremental steps only;
 *   - every `zfs` command the agents ran in the window, by verb (and the property asked for a
 *     `zfs get`), per node: how many per step, their p50 / p90 / max duration.
 * Reads files only; the cluster is long gone.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readLogLines, type LogLine } from './log-lines.ts';

const { values: flags, positionals } = parseArgs({ allowPositionals: true, options: { since: { type: 'string' }, until: { type: 'string' } } });
const dir = positionals[0];
if (!dir) throw new Error('usage: replication-steps.ts <logs dir> [--since ISO] [--until ISO]');
const since = flags.since ? Date.parse(flags.since) : -Infinity;
const until = flags.until ? Date.parse(flags.until) : Infinity;

type Rec = LogLine;

/** The records of `file` between --since and --until. */
function records(file: string): Rec[] {
  return readLogLines(file).filter((r) => r.time >= since && r.time <= until);
}

function stats(xs: number[]): string {
  if (xs.length === 0) return '—';
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `${q(0.5)} / ${q(0.9)} / ${s.at(-1)} ms`;
}

/** `hold`, `get guid,createtxg,…`, `destroy` … : the verb and, for get/set, what it reads or writes. */
function verbOf(args: string[]): string {
  const [verb] = args;
  if (verb === 'get') {
    const props = args.find((a, i) => i > 0 && !a.startsWith('-') && args[i - 1] !== '-o' && args[i - 1] !== '-d');
    const depth = args.includes('-d') ? ` -d ${args[args.indexOf('-d') + 1]}` : '';
    return `get${depth} ${props === undefined ? '' : props.length > 40 ? `${props.slice(0, 37)}…` : props}`;
  }
  if (verb === 'set') return `set ${(args[1] ?? '').split('=')[0]}`;
  return verb ?? '?';
}

const files = readdirSync(dir).filter((f) => f.endsWith('-agent.log'));
let primary: string | null = null;
let steps: Rec[] = [];
for (const f of files) {
  const sent = records(join(dir, f)).filter((r) => r.msg === 'snapshot sent' && r.base !== null);
  if (sent.length > steps.length) {
    steps = sent;
    primary = f;
  }
}
if (primary === null) throw new Error(`no 'snapshot sent' record in ${dir}`);
const phase = (k: string): number[] => steps.map((r) => Number((r.steps as Record<string, number>)[k] ?? NaN)).filter(Number.isFinite);
process.stdout.write(`primary ${primary}: ${steps.length} incremental steps; p50 / p90 / max\n`);
process.stdout.write(`  engine total    ${stats(steps.map((r) => Number(r.ms) + Number((r.steps as Record<string, number>).prepare ?? 0)))}\n`);
for (const k of ['prepare', 'send', 'settle', 'prune']) process.stdout.write(`  ${k.padEnd(15)} ${stats(phase(k))}\n`);
const around = records(join(dir, primary)).filter((r) => r.msg === 'replication step');
if (around.length > 0) {
  for (const k of ['snapshotMs', 'replicateMs', 'tailMs', 'totalMs']) process.stdout.write(`  scheduler ${k.padEnd(12)} ${stats(around.map((r) => Number(r[k])).filter(Number.isFinite))}\n`);
}
for (const f of files) {
  const cmds = records(join(dir, f)).filter((r) => r.msg === 'zfs command ran');
  const by = new Map<string, number[]>();
  for (const c of cmds) {
    const v = verbOf(c.args as string[]);
    by.set(v, [...(by.get(v) ?? []), Number(c.ms)]);
  }
  process.stdout.write(`${f}: ${cmds.length} zfs commands (${(cmds.length / steps.length).toFixed(1)} per primary step)\n`);
  for (const [v, ms] of [...by].sort((a, b) => b[1].length - a[1].length)) {
    process.stdout.write(`  ${v.padEnd(48)} ${String(ms.length).padStart(5)}  ${(ms.length / steps.length).toFixed(2).padStart(5)}/step  ${stats(ms)}\n`);
  }
}

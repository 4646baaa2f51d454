/** bench:migrate's output: the tables on stdout, or the one `--json` object (migrate.ts). */
import type { CaseResult } from './migrate-cases.ts';

export interface Result {
  sizeMiB: number;
  pauseMs: number;
  failed: number;
  lost: number;
  naivePauseMs: number;
  bytesSent: number;
  naiveFailed: number;
  naiveLost: number;
  naiveBytes: number;
  acked: number;
  rounds: number;
  cutoverMs: number | null;
  moveMs: number;
}

export function report(results: Result[], caseResults: CaseResult[], sizes: number[], json: boolean): void {
  if (json) {
    const sizesOut = results.map(({ sizeMiB, pauseMs, failed, lost, naivePauseMs, bytesSent }) => ({ sizeMiB, pauseMs, failed, lost, naivePauseMs, bytesSent }));
    const casesOut = caseResults.map(({ app, sizeMiB, pauseMs, ownStopMs, ownStartMs, overheadMs, ownColdStartMs, overheadColdMs, lost, failed }) => ({ app, sizeMiB, pauseMs, ownStopMs, ownStartMs, overheadMs, ownColdStartMs, overheadColdMs, lost, failed }));
    process.stdout.write(`${JSON.stringify({ sizes: sizesOut, cases: casesOut })}\n`);
    return;
  }
  const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
  if (results.length > 0) {
    table([
      ['size', 'pause', 'failed', 'lost', 'acked', 'rounds', 'sent', 'move', 'naive pause', 'naive failed', 'naive lost', 'naive ÷ drover'],
      ...results.map((r) => [
        `${r.sizeMiB} MiB`,
        `${r.pauseMs} ms`,
        String(r.failed),
        String(r.lost),
        String(r.acked),
        String(r.rounds),
        `${mib(r.bytesSent)} MiB`,
        `${(r.moveMs / 1000).toFixed(1)} s`,
        `${r.naivePauseMs} ms`,
        String(r.naiveFailed),
        String(r.naiveLost),
        (r.naivePauseMs / Math.max(1, r.pauseMs)).toFixed(1),
      ]),
    ]);
    for (const size of sizes) {
      const pauses = caseResults.filter((c) => c.app === 'redis-ballast' && c.sizeMiB === size).map((c) => c.pauseMs).sort((a, b) => a - b);
      if (pauses.length > 0) process.stdout.write(`ballast ${size} MiB over ${pauses.length} move(s): pause p50 ${pauses[Math.floor((pauses.length - 1) / 2)]} ms, max ${pauses.at(-1)} ms (target p50 ≤ 500, max ≤ 1000)\n`);
    }
  }
  if (caseResults.length > 0) {
    const n = (v: number | null): string => (v === null ? '-' : String(v));
    table([
      ['app', 'size', 'pause', 'own stop', 'own start', 'overhead', 'own start cold', 'overhead cold', 'failed', 'lost', 'acked', 'sent', 'hook', 'last round', 'hold', 'stop', 'final snap', 'final send', 'handoff', 'mount', 'gate open', 'ready', 'release', 'accepted', 'switched'],
      ...caseResults.map((c) => [
        c.app,
        `${c.sizeMiB} MiB`,
        `${c.pauseMs} ms`,
        n(c.ownStopMs),
        n(c.ownStartMs),
        n(c.overheadMs),
        n(c.ownColdStartMs),
        n(c.overheadColdMs),
        String(c.failed),
        String(c.lost),
        String(c.acked),
        `${mib(c.bytes)} MiB`,
        ...(['hook', 'lastRound', 'hold', 'stop', 'finalSnapshot', 'finalSend', 'handoff', 'targetMount', 'gateOpen', 'appReady', 'release', 'accepted', 'switched'] as const).map((p) => n(c.breakdown?.[p] ?? null)),
      ]),
    ]);
    const overheads = caseResults.filter((c) => c.app !== 'redis-ballast' && c.overheadMs !== null).map((c) => c.overheadMs!).sort((a, b) => a - b);
    if (overheads.length > 0) process.stdout.write(`real data: overhead p50 ${overheads[Math.floor((overheads.length - 1) / 2)]} ms over ${overheads.length} move(s) (target ≤ 250)\n`);
    const cold = caseResults.filter((c) => c.app !== 'redis-ballast' && c.overheadColdMs !== null).map((c) => c.overheadColdMs!).sort((a, b) => a - b);
    if (cold.length > 0) process.stdout.write(`real data: overhead against the own start with a cold page cache, p50 ${cold[Math.floor((cold.length - 1) / 2)]} ms over ${cold.length} move(s)\n`);
    const redis = caseResults.filter((c) => c.app === 'redis').sort((a, b) => a.sizeMiB - b.sizeMiB);
    if (redis.length > 1) process.stdout.write(`redis pause at ${redis.at(-1)!.sizeMiB} MiB ÷ at ${redis[0]!.sizeMiB} MiB: ${(redis.at(-1)!.pauseMs / Math.max(1, redis[0]!.pauseMs)).toFixed(2)} (target ≤ 1.3 where the own start does not grow)\n`);
  }
  process.stdout.write('targets: 0 lost, 0 failed everywhere; phases in ms from the agents\' logs\n');
}

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, c) => cell.padStart(widths[c]!)).join('  ')}\n`);
}


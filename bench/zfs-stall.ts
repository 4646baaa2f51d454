/**
 * `npx tsx bench/zfs-stall.ts [--seconds 20] [--rate 200] [--phases idle,snap-A,…] [--json]`
 *
 * Why `bench:replication` misses its write-latency target (issue 15): is it drover, or the
 * zfs-fuse daemon? No drover process runs here. Two file-backed pools, A and B, on the one
 * zfs-fuse daemon of this machine (the local cluster's nodes share it the same way). A
 * writer appends 1 KiB and fsyncs (Redis with `appendfsync always`) `--rate` times a second
 * to a file on A: every 100 ms the writes due since the last batch, then one fdatasync (a
 * Redis writing in batches, or `appendfsync everysec` at a finer grain); each batch's
 * write + fdatasync time is measured. Phases of `--seconds`:
 *   idle          nothing else
 *   snap-A        `zfs snapshot` of A's dataset every 1 s (what a replication step takes)
 *   step-A        snapshot + hold + release on A every 1 s (a step's bookkeeping on the source)
 *   send-A→B      an incremental `zfs send -i | zfs receive` A → B every 1 s (a whole step)
 *   snap-B        `zfs snapshot` of B's dataset every 1 s: nothing touches A
 *   snap-A+busy   `zfs snapshot` of A every 1 s while its snapshots are listed every 200 ms and
 *                 the previous one is sent to /dev/null (a replicating agent's other commands)
 * and prints p50 / p99 / max of the batches' write + fdatasync time per phase, how many took
 * ≥ 0.5 s, and the zfs operations' own p50 and how many took ≥ 0.7 s. `--phases` runs only
 * those named (in this order); the first is the baseline of "p99 ÷ idle". `--writer redis`
 * writes as Redis with `appendfsync everysec` does instead: one 1 KiB write per SET, each
 * measured from when it was due, and an fdatasync a second beside them. `--hold fsync` keeps
 * that writer's fdatasync out of each snapshot (waits for one in flight, starts none until the
 * `zfs snapshot` returns); `--hold all` holds its writes too (an application frozen for the
 * snapshot). They test docs/DESIGN.md §45: the ~0.95 s stall needs writes into the dataset
 * while it is snapshotted (`all` removes it), not the fsync (`fsync` does not). `--pre-sync`
 * (snap-A only) runs a cheap sync task on the same pool right before each `zfs snapshot` — a
 * `zfs set` of a user property on a tiny idle dataset, which returns once the group it joined
 * has synced — so that the snapshot starts with the pool's sync pipeline empty (docs/DESIGN.md
 * §47); its own time is printed apart (what it would add to a replication step's lag).
 */
import { spawn, execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { open, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';

const run = promisify(execFile);
const { values: flags } = parseArgs({
  options: { json: { type: 'boolean', default: false }, seconds: { type: 'string', default: '20' }, rate: { type: 'string', default: '200' }, phases: { type: 'string' }, writer: { type: 'string', default: 'batch' }, hold: { type: 'string', default: 'none' }, 'pre-sync': { type: 'boolean', default: false } },
});
const seconds = Number(flags.seconds);
const rate = Number(flags.rate);
if (!Number.isInteger(seconds) || seconds < 5 || seconds > 600) throw new Error('--seconds: a whole number 5..600');
if (!Number.isInteger(rate) || rate < 1 || rate > 2000) throw new Error('--rate: writes per second, 1..2000');
if (!['batch', 'redis'].includes(flags.writer)) throw new Error('--writer: batch or redis');
if (!['none', 'fsync', 'all'].includes(flags.hold)) throw new Error('--hold: none, fsync or all');
if (flags.hold !== 'none' && flags.writer !== 'redis') throw new Error('--hold: only with --writer redis');
const preSync = flags['pre-sync'];
const say = (line: string): void => void process.stderr.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

const tag = randomUUID().slice(0, 8);
const poolA = `drover-stall-a-${tag}`;
const poolB = `drover-stall-b-${tag}`;
const zfs = async (...args: string[]): Promise<string> => (await run('zfs', args, { timeout: 120_000 })).stdout;

/** `zfs send -i from A@a A@b | zfs receive -F B/data`, both as children of this process. */
function sendReceive(base: string, snapshot: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const send = spawn('zfs', ['send', '-i', `${poolA}/data@${base}`, `${poolA}/data@${snapshot}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const receive = spawn('zfs', ['receive', '-F', `${poolB}/data`], { stdio: ['pipe', 'ignore', 'inherit'] });
    send.stdout.pipe(receive.stdin);
    let left = 2;
    const done = (code: number | null): void => {
      if (code !== 0) reject(new Error(`zfs send/receive exited ${code}`));
      else if (--left === 0) resolve();
    };
    send.on('exit', done);
    receive.on('exit', done);
  });
}

interface Phase {
  name: string;
  /** Run once a second while the phase lasts. */
  tick: ((n: number) => Promise<void>) | null;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'drover-zfs-stall-'));
  const mount = join(dir, 'a');
  // Only the pools this run created are destroyed at the end.
  const created: string[] = [];
  try {
    for (const pool of [poolA, poolB]) {
      const file = join(dir, `${pool}.img`);
      await writeFile(file, '');
      await truncate(file, 512 << 20);
      await run('zpool', ['create', '-m', 'none', pool, file], { timeout: 120_000 });
      created.push(pool);
    }
    await zfs('create', '-o', `mountpoint=${mount}`, `${poolA}/data`);
    await zfs('snapshot', `${poolA}/data@s0`);
    await new Promise<void>((resolve, reject) => {
      const send = spawn('zfs', ['send', `${poolA}/data@s0`], { stdio: ['ignore', 'pipe', 'inherit'] });
      const receive = spawn('zfs', ['receive', `${poolB}/data`], { stdio: ['pipe', 'ignore', 'inherit'] });
      send.stdout.pipe(receive.stdin);
      receive.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`seed receive exited ${c}`))));
    });
    await zfs('set', 'mountpoint=none', `${poolB}/data`);
    // --pre-sync's target: nothing writes into it, so its sync task is the group's only work there.
    await zfs('create', '-o', 'mountpoint=none', `${poolA}/idle`);

    let last = 's0';
    // snap-A's parts: the pre-sync and the `zfs snapshot` alone (a tick is both).
    let preSyncMs: number[] = [];
    let snapshotMs: number[] = [];
    const phases: Phase[] = [
      { name: 'idle', tick: null },
      {
        name: 'snap-A',
        tick: async (n) => {
          if (preSync) {
            const began = performance.now();
            await zfs('set', `drover:presync=${n}`, `${poolA}/idle`);
            preSyncMs.push(performance.now() - began);
          }
          const began = performance.now();
          await zfs('snapshot', `${poolA}/data@p${n}`);
          snapshotMs.push(performance.now() - began);
        },
      },
      {
        name: 'step-A',
        tick: async (n) => {
          await zfs('snapshot', `${poolA}/data@h${n}`);
          await zfs('hold', 'bench', `${poolA}/data@h${n}`);
          await zfs('release', 'bench', `${poolA}/data@h${n}`);
        },
      },
      {
        name: 'send-A→B',
        tick: async (n) => {
          const next = `r${n}`;
          await zfs('snapshot', `${poolA}/data@${next}`);
          await sendReceive(last, next);
          last = next;
        },
      },
      { name: 'snap-B', tick: async (n) => void (await zfs('snapshot', `${poolB}/data@b${n}`)) },
      // What else a replicating agent does to the primary's pool while it snapshots: list the
      // dataset's snapshots (guid, createtxg, userrefs) every 200 ms and send the last one.
      {
        name: 'snap-A+busy',
        tick: async (n) => {
          // Not awaited (the snapshot goes beside it); a listing that fails is of no interest.
          const listing = (async () => {
            for (let i = 0; i < 5; i++) {
              await zfs('get', '-Hp', '-d', '1', '-o', 'name,property,value', 'guid,createtxg,userrefs', `${poolA}/data`);
              await sleep(200);
            }
          })().catch(() => undefined);
          // stdout ignored: the stream goes to /dev/null.
          if (n > 1) spawn('zfs', ['send', '-i', `${poolA}/data@q${n - 1}`, `${poolA}/data@q${n}`], { stdio: 'ignore' });
          await zfs('snapshot', `${poolA}/data@q${n + 1}`);
          void listing;
        },
      },
    ];

    const wanted = flags.phases?.split(',') ?? phases.map((p) => p.name);
    const unknown = wanted.filter((name) => !phases.some((p) => p.name === name));
    if (unknown.length > 0) throw new Error(`--phases: unknown ${unknown.join(', ')} (known: ${phases.map((p) => p.name).join(', ')})`);
    if (preSync && wanted.some((name) => name !== 'snap-A' && name !== 'idle')) throw new Error('--pre-sync: only with --phases snap-A (or idle,snap-A)');
    const file = await open(join(mount, 'aof'), 'a');
    const results: Array<{
      phase: string; writes: number; p50Ms: number; p99Ms: number; maxMs: number; slowWrites: number; ticks: number; tickP50Ms: number; slowTicks: number;
      tickP99Ms: number; snapshotP50Ms: number; snapshotP99Ms: number; slowSnapshots: number; preSyncP50Ms: number; preSyncP99Ms: number; preSyncMaxMs: number;
    }> = [];
    try {
      for (const phase of wanted.map((name) => phases.find((p) => p.name === name)!)) {
        say(`phase ${phase.name}: ${seconds} s`);
        const latencies: number[] = [];
        const tickMs: number[] = [];
        preSyncMs = [];
        snapshotMs = [];
        const end = performance.now() + seconds * 1000;
        // --hold: the writer's fdatasync (and with `all` its writes) wait while a tick runs, and
        // a tick starts only once an fdatasync in flight has returned.
        let ticking: Promise<void> | null = null;
        let syncing: Promise<void> | null = null;
        const ticker = (async () => {
          if (!phase.tick) return;
          for (let n = 0; performance.now() < end; n++) {
            const due = performance.now();
            if (flags.hold !== 'none') while (syncing) await syncing;
            const began = performance.now();
            const tick = phase.tick(n);
            if (flags.hold !== 'none') ticking = tick.finally(() => void (ticking = null));
            await tick;
            tickMs.push(performance.now() - began);
            await sleep(1000 - (performance.now() - due));
          }
        })();
        const batch = Buffer.alloc(Math.max(1, Math.round(rate / 10)) * 1024, 120);
        if (flags.writer === 'redis') {
          // Redis with `appendfsync everysec`: one 1 KiB write(2) per SET, `--rate` a second,
          // each measured; an fdatasync once a second beside them, not waited for by the writes.
          const one = Buffer.alloc(1024, 120);
          const syncer = (async () => {
            while (performance.now() < end) {
              while (ticking) await ticking;
              syncing = file.datasync().finally(() => void (syncing = null));
              await syncing;
              await sleep(1000);
            }
          })();
          let due = performance.now();
          while (performance.now() < end) {
            if (flags.hold === 'all') while (ticking) await ticking;
            await file.write(one);
            latencies.push(performance.now() - due);
            due += 1000 / rate;
            await sleep(due - performance.now());
          }
          await syncer;
        }
        while (flags.writer !== 'redis' && performance.now() < end) {
          const began = performance.now();
          await file.write(batch);
          await file.datasync();
          const took = performance.now() - began;
          latencies.push(took);
          await sleep(100 - took);
        }
        await ticker;
        latencies.sort((a, b) => a - b);
        tickMs.sort((a, b) => a - b);
        preSyncMs.sort((a, b) => a - b);
        snapshotMs.sort((a, b) => a - b);
        const q = (xs: number[], p: number): number => (xs.length === 0 ? NaN : Math.round(xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]! * 10) / 10);
        results.push({
          phase: phase.name,
          writes: latencies.length,
          p50Ms: q(latencies, 0.5),
          p99Ms: q(latencies, 0.99),
          maxMs: q(latencies, 1),
          slowWrites: latencies.filter((x) => x >= 500).length,
          ticks: tickMs.length,
          tickP50Ms: q(tickMs, 0.5),
          slowTicks: tickMs.filter((x) => x >= 700).length,
          tickP99Ms: q(tickMs, 0.99),
          snapshotP50Ms: q(snapshotMs, 0.5),
          snapshotP99Ms: q(snapshotMs, 0.99),
          slowSnapshots: snapshotMs.filter((x) => x >= 700).length,
          preSyncP50Ms: q(preSyncMs, 0.5),
          preSyncP99Ms: q(preSyncMs, 0.99),
          preSyncMaxMs: q(preSyncMs, 1),
        });
      }
    } finally {
      await file.close();
    }
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ phases: results })}\n`);
      return;
    }
    const idle = results[0]!;
    process.stdout.write(`${['phase', 'writes', 'p50 ms', 'p99 ms', 'max ms', '≥ 0.5 s', 'p99 ÷ idle', 'zfs ops', 'op p50 ms', 'ops ≥ 0.7 s', 'op p99 ms', 'snapshot p50 / p99 ms', 'snapshots ≥ 0.7 s', 'pre-sync p50 / p99 / max ms'].join('\t')}\n`);
    for (const r of results) {
      process.stdout.write(`${[r.phase, r.writes, r.p50Ms, r.p99Ms, r.maxMs, r.slowWrites, (r.p99Ms / idle.p99Ms).toFixed(1), r.ticks, r.tickP50Ms, r.slowTicks, r.tickP99Ms, `${r.snapshotP50Ms} / ${r.snapshotP99Ms}`, r.slowSnapshots, `${r.preSyncP50Ms} / ${r.preSyncP99Ms} / ${r.preSyncMaxMs}`].join('\t')}\n`);
    }
  } finally {
    // zfs-fuse keeps a pool busy for a while after a `zfs send` from it: retry for up to ~2 min.
    for (const pool of created.reverse()) {
      for (let attempt = 1; ; attempt++) {
        const ok = await run('zpool', ['destroy', '-f', pool], { timeout: 120_000 }).then(() => true, (err: unknown) => (attempt === 12 ? (say(`zpool destroy ${pool}: ${String(err)}`), true) : false));
        if (ok) break;
        await sleep(10_000);
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
}

await main();

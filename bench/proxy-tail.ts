/**
 * `npx tsx bench/proxy-tail.ts` — where the native relay's kept-alive p99 comes from (issue #22,
 * docs/DESIGN.md §32). The balance case's setup (bench/proxy-balance.ts: 3 HAProxy backends,
 * HAProxy `balance leastconn` with 2 threads) and drover proxies on the native relay with
 * different thread counts, kept-alive `wrk -t2 -c50` only, rounds interleaved. Per sample:
 * req/s, p50/p90/p99 and, from /proc/<pid>/task/<tid>/schedstat, how long each front's threads
 * waited for a core while runnable (run_delay) and ran, per request; for the relays, with
 * DROVER_RELAY_STATS on, their epoll batches (native/relay-stats.c): length, duration, and how
 * long an event waited behind the earlier ones of its batch.
 *
 * Flags: --rounds N (5), --seconds S (5), --threads 1,2 (relay thread counts, one front each),
 * --tree DIR (this checkout) for the drover proxy run. Needs haproxy and wrk; all on 127.0.7.x.
 */
import { nodeFlagsOf } from '#common/node-flags.ts';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execa, type ResultPromise } from 'execa';
import type { Route } from '#common/channel.ts';
import { RouteServer } from '../proxy/testing/route-server.ts';
import { waitForPort } from './proxy-clients.ts';
import { BACKEND_HOST, PORTS, PORT, backend, leastconn } from './proxy-balance.ts';

const { values: flags } = parseArgs({ options: { rounds: { type: 'string' }, seconds: { type: 'string' }, threads: { type: 'string' }, tree: { type: 'string' } } });
const ROUNDS = Number(flags.rounds ?? 5);
const SECONDS = Number(flags.seconds ?? 5);
// `2p`: 2 threads, each pinned to a core of its own (taskset), to see what the scheduler's placement costs.
const THREADS = (flags.threads ?? '1,2').split(',').map((x) => ({ n: Number(x.replace('p', '')), pin: x.endsWith('p') }));
const tree = resolve(flags.tree ?? join(import.meta.dirname, '..'));
const dir = mkdtempSync(join(tmpdir(), 'drover-bench-tail-'));
const children: ResultPromise[] = [];
const backendPids: number[] = [];

function start(file: string, args: string[], env: Record<string, string> = {}): ResultPromise {
  const child = execa(file, args, { reject: false, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } });
  children.push(child);
  return child;
}

/** Sum over a process's threads (or its children's, for a drover proxy's relay): ns on a core, ns runnable but waiting for one. */
function sched(pids: number[]): { runNs: number; waitNs: number } {
  let runNs = 0;
  let waitNs = 0;
  for (const pid of pids) {
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
        runNs += run!;
        waitNs += wait!;
      } catch {
        // the thread ended
      }
    }
  }
  return { runNs, waitNs };
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

type Hist = Record<string, number[]>;
function relayStats(file: string): Hist {
  const out: Hist = {};
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.trim().split('\n')) {
    for (const field of line.split(' ')) {
      const [k, v] = field.split('=');
      if (k === undefined || v === undefined || k === 'thread') continue;
      const key = k === 'load' || k === 'events' ? `${k}${line.split(' ')[0]}` : k;
      const vals = v.split(',').map(Number);
      out[key] = out[key] ? out[key]!.map((x, i) => x + (vals[i] ?? 0)) : vals;
    }
  }
  return out;
}

const diff = (a: Hist, b: Hist): Hist => Object.fromEntries(Object.entries(b).map(([k, v]) => [k, k.startsWith('load') ? v : v.map((x, i) => x - (a[k]?.[i] ?? 0))]));

/** The bucket (upper bound, a power of two) under which `q` of the counts fall. */
function quantile(hist: number[] | undefined, q: number): number {
  if (!hist) return NaN;
  const total = hist.reduce((a, b) => a + b, 0);
  let seen = 0;
  for (let k = 0; k < hist.length; k++) {
    seen += hist[k]!;
    if (seen >= q * total) return k === 0 ? 0 : 2 ** k;
  }
  return NaN;
}

interface Sample {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  runUs: number;
  waitUs: number;
  backendsWaitUs: number;
  wrkWaitUs: number;
  batchLenP50: number;
  batchLenP99: number;
  batchUsP99: number;
  queuedUsP99: number;
  loads: string;
  events: string;
  readUp: string;
  readDown: string;
}

const ms = (m: RegExpExecArray | null) => (m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : NaN);

async function wrk(host: string, pids: number[], statsFile?: string): Promise<Sample> {
  const before = sched(pids);
  const backendsBefore = sched(backendPids);
  const hb = statsFile ? relayStats(statsFile) : {};
  const run = execa('wrk', ['-t2', '-c50', `-d${SECONDS}s`, '--latency', `http://${host}:${PORT}/`], { reject: false });
  await new Promise((r) => setTimeout(r, 300));
  const wrkBefore = sched([run.pid!]);
  await new Promise((r) => setTimeout(r, (SECONDS * 1000) / 2));
  const mid = statsFile ? relayStats(statsFile) : {};
  await new Promise((r) => setTimeout(r, (SECONDS * 1000) / 2 - 800));
  const wrkAfter = sched([run.pid!]); // the last 0.5 s and the first 0.3 s uncounted: an estimate per request
  const backendsAfter = sched(backendPids);
  const { stdout } = await run;
  await new Promise((r) => setTimeout(r, statsFile ? 1_100 : 0)); // the relay rewrites its stats every second
  const after = sched(pids);
  const h = statsFile ? diff(hb, relayStats(statsFile)) : {};
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0) || NaN;
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0),
    p50: ms(/\s50%\s+([\d.]+)(us|ms|s)/.exec(stdout)),
    p90: ms(/\s90%\s+([\d.]+)(us|ms|s)/.exec(stdout)),
    p99: ms(/\s99%\s+([\d.]+)(us|ms|s)/.exec(stdout)),
    runUs: (after.runNs - before.runNs) / 1000 / requests,
    waitUs: (after.waitNs - before.waitNs) / 1000 / requests,
    backendsWaitUs: (backendsAfter.waitNs - backendsBefore.waitNs) / 1000 / requests,
    wrkWaitUs: (wrkAfter.waitNs - wrkBefore.waitNs) / 1000 / ((requests * (SECONDS - 0.8)) / SECONDS),
    batchLenP50: quantile(h.batch_len, 0.5),
    batchLenP99: quantile(h.batch_len, 0.99),
    batchUsP99: quantile(h.batch_us, 0.99),
    queuedUsP99: quantile(h.queued_us, 0.99),
    loads: Object.entries(mid)
      .filter(([k]) => k.startsWith('load'))
      .map(([, v]) => v[0])
      .join('/'),
    events: Object.entries(h)
      .filter(([k]) => k.startsWith('events'))
      .map(([, v]) => v[0])
      .join('/'),
    readUp: [0.5, 0.99, 0.999].map((q) => quantile(h.read_up_us, q)).join('/'),
    readDown: [0.5, 0.99, 0.999].map((q) => quantile(h.read_down_us, q)).join('/'),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  PORTS.forEach((p, i) => {
    writeFileSync(join(dir, `b${i}.cfg`), backend(p));
    backendPids.push(start('haproxy', ['-f', join(dir, `b${i}.cfg`), '-db']).pid!);
  });
  writeFileSync(join(dir, 'leastconn.cfg'), leastconn);
  const fronts: { name: string; host: string; pid: number; relay: boolean; stats?: string; uuid?: string; pin?: boolean }[] = [{ name: 'haproxy', host: '127.0.7.3', pid: start('haproxy', ['-f', join(dir, 'leastconn.cfg'), '-db']).pid!, relay: false }];
  const routes = new RouteServer();
  await routes.start();
  const bin = join(tree, 'bin/drover-proxy.js');
  THREADS.forEach(({ n, pin }, i) => {
    const uuid = `00000000-0000-4000-8000-0000000000c${i}`;
    const host = `127.0.7.${10 + i}`;
    const stats = join(dir, `relay-${i}.stats`);
    const child = start(process.execPath, [...nodeFlagsOf(bin), bin, '--control', routes.url, '--node-uuid', uuid, '--listen-host', host, '--mode', 'user', '--poll-wait-ms', '5000', '--workers', String(n), '--engine', 'native'], { DROVER_LOG_LEVEL: 'warn', DROVER_RELAY_STATS: stats });
    fronts.push({ name: `relay×${n}${pin ? 'p' : ''}`, host, pid: child.pid!, relay: true, stats, uuid, pin });
  });
  const targets = PORTS.map((port) => ({ host: BACKEND_HOST, port, node_uuid: fronts[1]!.uuid! }));
  const table: Route[] = [{ application: 'bench-tail', external_port: PORT, target: targets[0]!, targets, hold: false, generation: 0 }];
  routes.publish(table);
  await Promise.all([...PORTS.map((p) => waitForPort(BACKEND_HOST, p)), ...fronts.map((f) => waitForPort(f.host, PORT))]);
  for (const f of fronts) if (f.uuid) await routes.waitForAck(f.uuid, 1, 30_000);
  for (const f of fronts.filter((x) => x.pin)) {
    const relay = childrenOf(f.pid)[0]!;
    // The relay's threads after its main thread, in start order: thread i on core i mod 2.
    const tids = readdirSync(`/proc/${relay}/task`).map(Number).sort((a, b) => a - b).slice(1);
    for (const [i, tid] of tids.entries()) await execa('taskset', ['-p', '-c', String(i % 2), String(tid)]);
  }
  console.log(`bench:proxy-tail — ${ROUNDS} rounds, kept alive, wrk -t2 -c50 -d${SECONDS}s; tree ${tree}; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  const samples: Record<string, Sample[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    const order = fronts.map((_, i) => fronts[(i + round) % fronts.length]!);
    for (const f of order) {
      const pids = f.relay ? childrenOf(f.pid) : [f.pid];
      const s = await wrk(f.host, pids, f.stats);
      (samples[f.name] ??= []).push(s);
      console.log(`  round ${round + 1} ${f.name.padEnd(8)} ${s.rps.toFixed(0).padStart(6)} req/s  p50 ${s.p50.toFixed(2)}  p90 ${s.p90.toFixed(2)}  p99 ${s.p99.toFixed(2)} ms  run ${s.runUs.toFixed(1)} µs/req  waited ${s.waitUs.toFixed(1)} µs/req (backends ${s.backendsWaitUs.toFixed(1)}, wrk ${s.wrkWaitUs.toFixed(1)})${f.relay ? `  batch p50/p99 ${s.batchLenP50}/${s.batchLenP99} ev, ${s.batchUsP99} µs; queued p99 ${s.queuedUsP99} µs; conns/thread ${s.loads}, events/thread ${s.events}; read delay p50/p99/p99.9 µs up ${s.readUp} down ${s.readDown}` : ''}`);
    }
  }
  console.log('\nfront      req/s   p50 ms  p90 ms  p99 ms  p99 range    run µs/req  waited µs/req  backends waited  wrk waited');
  for (const f of fronts) {
    const ss = samples[f.name]!;
    const m = (k: keyof Sample) => median(ss.map((s) => s[k] as number));
    const p99s = ss.map((s) => s.p99);
    console.log(`${f.name.padEnd(9)} ${m('rps').toFixed(0).padStart(7)} ${m('p50').toFixed(2).padStart(7)} ${m('p90').toFixed(2).padStart(7)} ${m('p99').toFixed(2).padStart(7)}  ${Math.min(...p99s).toFixed(1)}–${Math.max(...p99s).toFixed(1)}  ${m('runUs').toFixed(1).padStart(10)} ${m('waitUs').toFixed(1).padStart(13)} ${m('backendsWaitUs').toFixed(1).padStart(16)} ${m('wrkWaitUs').toFixed(1).padStart(11)}`);
  }
  await routes.stop();
}

try {
  await main();
} finally {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => c.catch(() => {})));
  rmSync(dir, { recursive: true, force: true });
}

/**
 * bench:control — the control plane under load (docs/DESIGN.md §15 "Control plane").
 *
 * For n = 1k, 5k and 10k applications (each with its own dataset), spread over 200 nodes:
 * the real control service process (bin/drover-control.js, file store on a temp dir) and
 * 200 simulated agents in a second process (control-agents.ts), each reporting its node's datasets and containers
 * every second and long-polling its desired view, all over HTTP. Measured at each size:
 * - read: whole lists (GET /v1/state/datasets and GET /v1/configuration/containers, the
 *   `readP99Ms` of --json) and one entry (GET /v1/drover/applications/<name>), in a
 *   process of their own (this file with `--reader`) running beside the moves;
 * - move: POST /v1/configuration/containers/<name> to another node (each starts a migration);
 * - push: from sending a move to the target agent's long-poll answering with the migration
 *   (an upper bound of "accepted → received");
 * - CPU (user + system, from /proc) of the service per second: first with the agents alone
 *   (the cost of 200 reports a second and their long-polls), then during reads and moves;
 *   and of the agents' process. Less noisy than latencies on a shared machine.
 * - writes/s: dataset creations from 16 concurrent clients for a few seconds.
 * The store is seeded by writing its file before the process starts (seeding over HTTP would
 * only measure the seeding). Prints p50/p99 and the growth from the smallest size; `--json`
 * prints `{"sizes": [{n, store, readP99Ms, moveP99Ms, pushP99Ms, …}]}` only.
 *
 * `--store etcd` measures the store on etcd beside the file store in the same run (docs/DESIGN.md
 * §28): a one-member etcd started on 127.0.0.1 for the run (temp data, removed after), seeded
 * through the etcd store itself, and the control service started with `--store etcd`.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { systemClock } from '#common/clock.ts';
import { silentLogger } from '#common/log.ts';
import { EtcdClient } from '../control-service/store/etcd-client.ts';
import { EtcdConfigStore } from '../control-service/store/etcd-store.ts';
import { startEtcd, stopEtcd, type EtcdCluster } from '../local-cluster/etcd.ts';

const SIZES = process.env.BENCH_SIZES ? process.env.BENCH_SIZES.split(',').map(Number) : [1000, 5000, 10000];
const NODES = 200;
const READS = 300;
const MOVES = 100;
const QUIET_MS = 4000;
const BIN = resolve(import.meta.dirname, '../bin/drover-control.js');
const AGENTS = resolve(import.meta.dirname, 'control-agents.ts');
const json = process.argv.includes('--json');
const storeArg = process.argv.indexOf('--store');
const STORES: ('file' | 'etcd')[] = storeArg >= 0 && process.argv[storeArg + 1] === 'etcd' ? (process.env.BENCH_ONLY_ETCD ? ['etcd'] : ['file', 'etcd']) : ['file'];
const WRITE_CLIENTS = 16;
const WRITE_SECONDS = 3;
let etcd: EtcdCluster | null = null;

const uuid = (prefix: string, i: number) => `${prefix}-0000-4000-8000-${String(i).padStart(12, '0')}`;
const nodeId = (i: number) => uuid('00000001', i);
const datasetId = (i: number) => uuid('0000000d', i);
const say = (line: string) => {
  if (!json) process.stdout.write(`${line}\n`);
};

interface Sample {
  n: number;
  store: 'file' | 'etcd';
  /** Dataset creations per second, 16 clients at once. */
  writesPerS: number;
  /** Whole-list reads: GET /v1/state/datasets and GET /v1/configuration/containers. */
  readP50Ms: number;
  readP99Ms: number;
  /** One-entry reads: GET /v1/drover/applications/<name>. */
  readOneP50Ms: number;
  readOneP99Ms: number;
  moveP50Ms: number;
  moveP99Ms: number;
  pushP50Ms: number;
  pushP99Ms: number;
  /** Requests of the measuring client that got no answer (connection reset) and were retried. */
  connectionFailures: number;
  /** The control service's own time for a move (its Server-Timing header). */
  moveServerP50Ms: number;
  moveServerP99Ms: number;
  /** CPU time (user + system) of the control service per second with only the agents reporting and polling (before the reads and moves). */
  reportsOnlyCpuMsPerS: number;
  /** CPU time (user + system) of the control service during the measurement, per second of it: a figure less noisy than latencies on a shared machine. */
  serviceCpuMsPerS: number;
  /** The same for the simulated agents' process. */
  agentsCpuMsPerS: number;
}

/** CPU time (user + system) a process has used so far, in ms (Linux /proc; NaN elsewhere). */
async function cpuMs(pid: number | undefined): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat (utime, stime), counted after the command name; clock ticks of 10 ms.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Number(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!.toFixed(2));
}

function seedDocument(n: number) {
  const nodes = Array.from({ length: NODES }, (_, i) => ({ uuid: nodeId(i), host: `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`, labels: {}, transfer: {} }));
  const datasets = Array.from({ length: n }, (_, i) => ({ dataset_id: datasetId(i), primary: nodeId(i % NODES), maximum_size: null, metadata: { name: `vol${i}` }, deleted: false }));
  const applications = Array.from({ length: n }, (_, i) => ({
    name: `app${i}`,
    node_uuid: nodeId(i % NODES),
    image: 'redis:7',
    environment: { ROLE: 'cache' },
    ports: [{ internal: 6379, external: 10000 + i }],
    volumes: [{ dataset_id: datasetId(i), mountpoint: '/data' }],
    links: [],
    restart_policy: { name: 'never' },
    labels: {},
  }));
  return { nodes, datasets, applications, leases: [], migrations: [] };
}

/** Writes the document where the control service will find it: its file, or etcd under `prefix`. */
async function seed(dir: string, n: number, store: 'file' | 'etcd', prefix: string): Promise<void> {
  const desired = seedDocument(n);
  if (store === 'file') {
    await writeFile(join(dir, 'desired.json'), JSON.stringify({ format_version: 1, version: 1, desired }));
    return;
  }
  const client = new EtcdClient({ endpoints: etcd!.endpoints, callTimeoutMs: 60_000 });
  const s = new EtcdConfigStore({ client, log: silentLogger(), prefix, writer: 'bench-seed', follow: false });
  await s.load();
  await s.update(() => desired as never);
  await s.close();
  client.close();
}

async function startControl(dir: string, store: 'file' | 'etcd', prefix: string): Promise<{ proc: ChildProcess; base: string }> {
  // The leader's lease: 15 s here (BENCH_LEADER_TTL), not the 3 s default. At 10k with 200 agents
  // the one process stalls for ~2 s at times and, on the default, steps down (safely) and is
  // elected again several times a minute, answering writes 503 meanwhile (docs/DESIGN.md §28):
  // this bench measures the store, the failover tests measure the lease.
  const storeArgs = store === 'etcd' ? ['--store', 'etcd', '--etcd-endpoints', etcd!.endpoints.join(','), '--etcd-prefix', prefix, '--leader-lease-ttl', process.env.BENCH_LEADER_TTL ?? '15'] : [];
  const proc = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []), BIN, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--insecure-plain-http', '--data-dir', dir, '--node-timeout', '30', ...storeArgs], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, DROVER_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info' } });
  const lines = createInterface({ input: proc.stdout! });
  const base = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error('the control service did not start within 120 s')), 120_000);
    lines.on('line', (line) => {
      // Errors of the service, and what is not a log line (e.g. --trace-gc from BENCH_NODE_ARGS).
      // Leadership changes too (the store on etcd): a bench run must not hide one.
      if (!line.startsWith('{') || /"level":[56]0/.test(line) || /leader/.test(line)) process.stderr.write(`${line}\n`);
      if (!line.includes('control service started')) return;
      clearTimeout(timer);
      done(JSON.parse(line).address);
    });
    proc.once('exit', (code, signal) => {
      fail(new Error(`the control service exited with ${code ?? signal}`));
      if (code !== 0 && signal !== 'SIGTERM') process.stderr.write(`the control service exited with ${code ?? signal}\n`);
    });
  });
  return { proc, base };
}

const sleep = (ms: number): Promise<void> => systemClock.sleep(ms);

/** Connection failures (no answer at all) seen by the measuring client; retried, counted, printed. */
let failures = 0;

/** The duration of `fn`; a request that got no answer is retried (up to 3 times) and counted. */
async function timed(fn: () => Promise<void>, what = ''): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    try {
      await fn();
      return performance.now() - started;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      if (cause === undefined || attempt >= 3) throw new Error(`${what} failed: ${(err as Error).message} (${cause ?? 'no cause'})`);
      failures++;
    }
  }
}

interface ReadResult {
  reads: number[];
  readsOne: number[];
  failures: number;
  error: string | null;
}

/** The read loop: whole lists and single entries, one after another. */
async function readLoop(base: string, n: number): Promise<ReadResult> {
  const out: ReadResult = { reads: [], readsOne: [], failures: 0, error: null };
  try {
    for (let i = 0; i < READS; i++) {
      const path = i % 2 === 0 ? '/v1/state/datasets' : '/v1/configuration/containers';
      out.reads.push(await timed(async () => void (await (await fetch(base + path)).arrayBuffer()), `GET ${path}`));
      out.readsOne.push(await timed(async () => void (await (await fetch(`${base}/v1/drover/applications/app${(i * 31) % n}`)).arrayBuffer()), 'GET /v1/drover/applications/<name>'));
    }
  } catch (err) {
    out.error = (err as Error).message;
  }
  out.failures = failures;
  return out;
}

/** Runs `readLoop` in a child process (this file with `--reader`). */
function readInChild(base: string, n: number): Promise<ReadResult> {
  const child = fork(import.meta.filename, ['--reader'], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (message) => resolve(message as ReadResult));
    child.once('exit', (code) => reject(new Error(`the reader exited with ${code} before answering`)));
    child.send({ base, n });
  });
}

/** Waits until the service accepts writes (on etcd: once it is elected). */
async function untilLeader(base: string): Promise<void> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    const res = await fetch(`${base}/v1/configuration/leases`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dataset_id: uuid('0000000e', 0), node_uuid: nodeId(0), expires: 1 }) }).catch(() => null);
    await res?.arrayBuffer();
    if (res && res.status < 300) return;
    if (performance.now() > deadline) throw new Error(`the control service did not accept a write within 60 s (last answer ${res?.status})`);
    await sleep(100);
  }
}

/** Dataset creations per second from WRITE_CLIENTS concurrent clients. */
async function writeRate(base: string): Promise<number> {
  let done = 0;
  let next = 0;
  const until = performance.now() + WRITE_SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: WRITE_CLIENTS }, async () => {
      while (performance.now() < until) {
        const i = next++;
        const res = await fetch(`${base}/v1/configuration/datasets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dataset_id: uuid('0000000f', i), primary: nodeId(i % NODES) }) });
        await res.arrayBuffer();
        if (res.status !== 201) throw new Error(`a dataset creation answered ${res.status}`);
        done++;
      }
    }),
  );
  return Math.round(done / ((performance.now() - started) / 1000));
}

async function measure(n: number, store: 'file' | 'etcd'): Promise<Sample> {
  failures = 0;
  const dir = await mkdtemp(join(tmpdir(), 'drover-bench-control-'));
  const prefix = `/bench-${n}-${Date.now()}/`;
  await seed(dir, n, store, prefix);
  const { proc, base } = await startControl(dir, store, prefix);
  await untilLeader(base);
  const agents = fork(AGENTS, [], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const seen = new Map<string, number>();
  let ready: () => void = () => undefined;
  const started = new Promise<void>((r) => (ready = r));
  agents.on('message', (message: unknown) => {
    if (message === 'ready') ready();
    else {
      const m = message as { node: number; id: string; at: number };
      seen.set(`${m.node}/${m.id}`, m.at);
    }
  });
  agents.send({ base, n, nodes: NODES });
  try {
    await Promise.race([started, sleep(60_000).then(() => Promise.reject(new Error('the agents did not start within 60 s')))]);
    await sleep(1500); // every agent has reported and holds a long-poll
    say(`  n=${n}: control service at ${base}, ${NODES} agents running`);
    // The agents alone for a while: the service's CPU for 200 reports a second and their long-polls.
    const quietStart = { cpu: await cpuMs(proc.pid), at: performance.now() };
    await sleep(QUIET_MS);
    const quiet = Math.round(((await cpuMs(proc.pid)) - quietStart.cpu) / ((performance.now() - quietStart.at) / 1000));
    const cpuStart = { service: await cpuMs(proc.pid), agents: await cpuMs(agents.pid), at: performance.now() };
    const reads: number[] = [];
    const readsOne: number[] = [];
    const moves: number[] = [];
    const movesServer: number[] = [];
    const pushes: number[] = [];
    // The reads run in a process of their own, so the time a move or push is measured with
    // does not include this process reading a 3 MB list. Settles (never rejects) so a
    // failure of the moves below is the error reported.
    const reading = readInChild(base, n).then(
      (r) => {
        reads.push(...r.reads);
        readsOne.push(...r.readsOne);
        failures += r.failures;
        return r.error === null ? null : new Error(r.error);
      },
      (err: unknown) => err as Error,
    );
    for (let k = 0; k < MOVES; k++) {
      const app = (k * 7919) % n;
      const target = (app % NODES + 1 + (k % (NODES - 1))) % NODES;
      const sent = performance.timeOrigin + performance.now();
      let id = '';
      moves.push(
        await timed(async () => {
          const response = await fetch(`${base}/v1/configuration/containers/app${app}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node_uuid: nodeId(target) }) });
          movesServer.push(Number(/dur=([\d.]+)/.exec(response.headers.get('server-timing') ?? '')?.[1] ?? NaN));
          const answer = (await response.json()) as { migration?: { id: string } };
          if (!answer.migration) throw new Error(`move of app${app} answered ${JSON.stringify(answer).slice(0, 200)}`);
          id = answer.migration.id;
        }, `POST move app${app}`),
      );
      const deadline = performance.now() + 30_000;
      while (!seen.has(`${target}/${id}`) && performance.now() < deadline) await sleep(2);
      const received = seen.get(`${target}/${id}`);
      if (received === undefined) throw new Error(`the target agent did not receive migration ${id} within 30 s`);
      pushes.push(received - sent);
      await sleep(20);
    }
    const readFailure = await reading;
    if (readFailure) throw readFailure;
    const seconds = (performance.now() - cpuStart.at) / 1000;
    const perSecond = async (pid: number | undefined, before: number) => Math.round(((await cpuMs(pid)) - before) / seconds);
    const serviceCpuMsPerS = await perSecond(proc.pid, cpuStart.service);
    const agentsCpuMsPerS = await perSecond(agents.pid, cpuStart.agents);
    const writesPerS = await writeRate(base);
    return {
      n,
      store,
      writesPerS,
      readP50Ms: percentile(reads, 50),
      readP99Ms: percentile(reads, 99),
      readOneP50Ms: percentile(readsOne, 50),
      readOneP99Ms: percentile(readsOne, 99),
      moveP50Ms: percentile(moves, 50),
      moveP99Ms: percentile(moves, 99),
      pushP50Ms: percentile(pushes, 50),
      pushP99Ms: percentile(pushes, 99),
      connectionFailures: failures,
      moveServerP50Ms: percentile(movesServer, 50),
      moveServerP99Ms: percentile(movesServer, 99),
      reportsOnlyCpuMsPerS: quiet,
      serviceCpuMsPerS,
      agentsCpuMsPerS,
    };
  } finally {
    agents.send('stop');
    await new Promise((r) => (agents.exitCode !== null ? r(undefined) : agents.once('exit', r)));
    proc.kill('SIGTERM');
    await new Promise((r) => (proc.exitCode !== null ? r(undefined) : proc.once('exit', r)));
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  say(`bench:control — ${NODES} simulated agents reporting every second; ${READS} reads and ${MOVES} moves per size; stores: ${STORES.join(', ')}`);
  if (STORES.includes('etcd')) {
    etcd = await startEtcd(await mkdtemp(join(tmpdir(), 'drover-bench-etcd-')));
    say(`  etcd ${etcd.endpoints.join(',')} (one member, temp data)`);
  }
  try {
    await measureAll();
  } finally {
    if (etcd) await stopEtcd(etcd);
  }
}

async function measureAll(): Promise<void> {
  const sizes: Sample[] = [];
  for (const n of SIZES) for (const store of STORES) {
    const s = await measure(n, store);
    sizes.push(s);
    say(
      `n=${String(n).padStart(5)} ${store.padEnd(4)}  writes/s ${s.writesPerS} | read list p50 ${s.readP50Ms} ms p99 ${s.readP99Ms} ms | read one p50 ${s.readOneP50Ms} ms p99 ${s.readOneP99Ms} ms | move p50 ${s.moveP50Ms} ms p99 ${s.moveP99Ms} ms | push p50 ${s.pushP50Ms} ms p99 ${s.pushP99Ms} ms | move inside the service p50 ${s.moveServerP50Ms} ms p99 ${s.moveServerP99Ms} ms | CPU ms/s: service ${s.serviceCpuMsPerS} (reports only ${s.reportsOnlyCpuMsPerS}), agents ${s.agentsCpuMsPerS}${s.connectionFailures > 0 ? ` | ${s.connectionFailures} requests reset and retried` : ''}`,
    );
  }
  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(1) : 'n/a');
  for (const store of STORES) {
    const mine = sizes.filter((s) => s.store === store);
    const first = mine[0]!;
    const last = mine[mine.length - 1]!;
    say(`${store}: growth ${first.n} → ${last.n} (×${last.n / first.n} entries): read p50 ×${ratio(last.readP50Ms, first.readP50Ms)}, move p50 ×${ratio(last.moveP50Ms, first.moveP50Ms)}, push p50 ×${ratio(last.pushP50Ms, first.pushP50Ms)}`);
    say(`${store}: targets at ${last.n}: read p99 ${last.readP99Ms} ms and move p99 ${last.moveP99Ms} ms (< 50 ms), push p99 ${last.pushP99Ms} ms (< 200 ms); ${last.writesPerS} writes/s`);
  }
  if (STORES.length > 1) {
    for (const n of SIZES) {
      const [f, e] = STORES.map((st) => sizes.find((s) => s.n === n && s.store === st)!);
      say(`n=${n} etcd/file: read p99 ×${ratio(e!.readP99Ms, f!.readP99Ms)}, move p99 ×${ratio(e!.moveP99Ms, f!.moveP99Ms)}, push p99 ×${ratio(e!.pushP99Ms, f!.pushP99Ms)}, writes/s ×${ratio(e!.writesPerS, f!.writesPerS)}`);
    }
  }
  if (json) process.stdout.write(`${JSON.stringify({ sizes })}\n`);
}

if (process.argv.includes('--reader')) {
  process.once('message', (message) => {
    const { base, n } = message as { base: string; n: number };
    void readLoop(base, n).then((result) => process.send!(result, () => process.exit(0)));
  });
} else {
  main().catch((err: unknown) => {
    process.stderr.write(`bench:control failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

/**
 * `npm run bench:replication [-- --json] [--seconds 60] [--intervals 1,2,5] [--load-mib 64] [--rate 200]`
 *
 * Continuous replication under a steady writer (docs/DESIGN.md §15): Redis on node 1 of a
 * 3-node local cluster running drover's real processes, `--load-mib` of real Redis data (SETs
 * of random values, kept in its append-only file on the dataset), and a client writing
 * `--rate` SETs per second of 1 KiB random values through node 1's proxy for the whole run,
 * each write's latency measured from when it was due (a late write counts its wait).
 *
 * For each interval the run alternates two phases on the same data and machine:
 *   off  replication off (`replicas: 0`), `seconds / 2` (at least 10 s): the baseline
 *   on   `replicas: 2` at that interval, `seconds`, measured once both replicas are `ok`,
 *        past their seeding and past the pruning of an earlier phase's snapshots
 * and prints per interval:
 *   lag       p50 / p99 / max of the replicas' `lag_seconds` in `GET /v1/drover/replication`,
 *             sampled every 100 ms during the on phase (both replicas pooled)
 *   bytes     replicated per second (Δ `bytes_sent_total`, per replica) beside the bytes the
 *             client wrote per second
 *   write p99 on the primary, on vs off, and the ratio
 *   stalls    Redis's latency monitor (threshold 50 ms): how often its main thread waited ≥ 0.5 s
 *             in the write(2) of its append-only file (on zfs-fuse: while a `zfs snapshot` of the
 *             dataset runs; bench/replication-stall.ts finds that), off and on
 *   CPU       per GiB replicated: the agents', the nodes' sshd (every process under it: its
 *             per-connection children, drover-receive, `zfs receive`)
 *             and the zfs-fuse daemon's CPU from /proc during the on phase, whole and minus
 *             the off phase's rate
 * Targets beside them: lag p99 ≤ 2 × interval, write p99 on ÷ off ≤ 1.2.
 * `--freeze`: the on phases' policy asks for `freeze_during_snapshot` (docs/DESIGN.md §47).
 * `--json` prints only `{"runs":[{"intervalS","lagP50S","lagP99S","lagMaxS","writeP99RatioOnOff"}]}`.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { ApiClient } from '#common/api-client.ts';
import type { ReplicationAnswer } from '#common/api.ts';
import { silentLogger } from '#common/log.ts';
import { systemClock } from '#common/clock.ts';
import { loadData, type Endpoint } from '../cli/demo/redis-load.ts';
import { RedisConnection } from '../cli/demo/redis-client.ts';
import { clusterDown, clusterUp, controlClient, controlUrl, servicesStatus, startServices, type LocalCluster } from '../local-cluster/index.ts';
import { leaseSubnet } from '../test/support/cluster.ts';

const { values: flags } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '60' },
    intervals: { type: 'string', default: '1,2,5' },
    'load-mib': { type: 'string', default: '64' },
    rate: { type: 'string', default: '200' },
    freeze: { type: 'boolean', default: false },
  },
});
const seconds = Number(flags.seconds);
const intervals = flags.intervals.split(',').map(Number);
const loadMiB = Number(flags['load-mib']);
const rate = Number(flags.rate);
if (!Number.isInteger(seconds) || seconds < 5) throw new Error('--seconds: a whole number ≥ 5');
if (intervals.some((i) => !Number.isInteger(i) || i < 1 || i > 600)) throw new Error('--intervals: seconds, each 1..600');
if (!Number.isInteger(loadMiB) || loadMiB < 0 || loadMiB > 1024) throw new Error('--load-mib: 0..1024');
if (!Number.isInteger(rate) || rate < 1 || rate > 5000) throw new Error('--rate: writes per second, 1..5000');
const say = (line: string): void => void process.stderr.write(`${line}\n`);

const APP = 'rbench';
const PORT = 6600;
const VALUE_BYTES = 1024;
const RETENTION = { primary: '1x1m(keep=all) | 24x1h', replicas: '1x1m(keep=all) | 24x1h' };
/** RETENTION's keep=all span, seconds. */
const KEEP_ALL_S = 60;

/** How many snapshots of dataset `datasetId` pool `pool` holds. */
async function snapshotsOf(pool: string, datasetId: string): Promise<number> {
  const { stdout } = await execa('zfs', ['list', '-H', '-t', 'snapshot', '-o', 'name', '-r', pool]);
  return stdout.split('\n').filter((name) => name.includes(`/${datasetId}@`)).length;
}
const REDIS_ARGS = ['redis-server', '--bind', '0.0.0.0', '--protected-mode', 'no', '--dir', '/data', '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--latency-monitor-threshold', '50'];

interface Run {
  intervalS: number;
  lagP50S: number;
  lagP99S: number;
  lagMaxS: number;
  lagSamples: number;
  replicatedBps: number;
  writtenBps: number;
  writeP99OffMs: number;
  writeP99OnMs: number;
  writeP99RatioOnOff: number;
  cpuSPerGiB: number;
  extraCpuSPerGiB: number;
  writesOff: number;
  writesOn: number;
  aofStallsOff: AofStalls;
  aofStallsOn: AofStalls;
}

/** Redis's `aof-write` latency events (≥ 50 ms) since the last reset: how many, how many ≥ 0.5 s, the longest. */
interface AofStalls {
  events: number;
  overHalfSecond: number;
  maxMs: number;
}

/** Reads (and resets) Redis's latency history of AOF writes. Its history keeps the last 160 events, one per second at most. */
async function aofStalls(at: Endpoint): Promise<AofStalls> {
  const c = await RedisConnection.connect(at, { commandTimeoutMs: 10_000 });
  try {
    const rows = (await c.run((r) => r.call('LATENCY', 'HISTORY', 'aof-write'))) as Array<[number, number]>;
    await c.run((r) => r.call('LATENCY', 'RESET'));
    const ms = rows.map(([, latency]) => latency);
    return { events: ms.length, overHalfSecond: ms.filter((x) => x >= 500).length, maxMs: Math.max(0, ...ms) };
  } finally {
    c.close();
  }
}

/** SETs at a steady rate, one connection, each latency measured from when the write was due. */
class PacedWriter {
  private latencies: number[] = [];
  private bytes = 0;
  private running = false;
  private loop: Promise<void> | null = null;
  errors = 0;

  constructor(private readonly at: Endpoint) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** The latencies and bytes since the last call. */
  take(): { latencies: number[]; bytes: number } {
    const out = { latencies: this.latencies, bytes: this.bytes };
    this.latencies = [];
    this.bytes = 0;
    return out;
  }

  private async run(): Promise<void> {
    const period = 1000 / rate;
    let client: RedisConnection | null = null;
    let due = performance.now();
    for (let seq = 0; this.running; seq++) {
      const wait = due - performance.now();
      if (wait > 0) await systemClock.sleep(wait);
      try {
        client ??= await RedisConnection.connect(this.at, { commandTimeoutMs: 30_000 });
        const key = `bench:w:${seq}`;
        const value = randomBytes(VALUE_BYTES);
        const reply = await client.run((redis) => redis.set(key, value));
        if (reply !== 'OK') throw new Error(`SET answered ${JSON.stringify(reply)}`);
        this.latencies.push(performance.now() - due);
        this.bytes += key.length + VALUE_BYTES;
      } catch {
        this.errors++;
        client?.close();
        client = null;
      }
      due += period;
      // Far behind (a stall): start again from now rather than fire a burst.
      if (performance.now() - due > 5_000) due = performance.now();
    }
    client?.close();
  }
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const TICKS = 100; // USER_HZ on Linux

/** utime + stime (+ reaped children's, when `children`) of `pid`, in seconds; 0 when gone. */
function cpuOf(pid: number, children: boolean): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state is [0], so utime (14) is [11], stime [12], cutime [13], cstime [14].
    const own = Number(f[11]) + Number(f[12]);
    return (children ? own + Number(f[13]) + Number(f[14]) : own) / TICKS;
  } catch {
    return 0;
  }
}

/** The CPU seconds replication costs on this machine: agents and sshd with their children, zfs-fuse. */
function replicationCpu(cluster: LocalCluster): number {
  const p = cpuParts(cluster);
  return p.agents + p.sshd + p.zfsFuse;
}

/** The same, by part, and the whole machine's busy CPU seconds (/proc/stat), to see where a phase's CPU went. */
function cpuParts(cluster: LocalCluster): { agents: number; sshd: number; zfsFuse: number; machine: number } {
  const out = { agents: 0, sshd: 0, zfsFuse: 0, machine: 0 };
  for (const s of servicesStatus(cluster)) if (s.kind === 'agent' && s.pid !== null) out.agents += cpuOf(s.pid, true);
  // Every live process under each node's sshd (its per-connection children, their drover-receive
  // and zfs receive), each with its reaped children: a persistent connection's processes are not
  // reaped during a phase, so the master's own counters alone saw none of them.
  const masters = new Set<number>();
  for (const node of cluster.nodes) {
    try {
      masters.add(Number(readFileSync(`/run/drover/${cluster.name}/${node.name}/sshd.pid`, 'utf8').trim()));
    } catch {
      // no sshd pid file: nothing to count
    }
  }
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const underSshd = (pid: number): boolean => {
    for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 20; p = parents.get(p), hops++) if (masters.has(p)) return true;
    return false;
  };
  for (const pid of parents.keys()) if (underSshd(pid)) out.sshd += cpuOf(pid, true);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'zfs-fuse') out.zfsFuse += cpuOf(Number(entry), false);
    } catch {
      // gone meanwhile
    }
  }
  // cpu  user nice system idle iowait irq softirq steal …: busy = all but idle and iowait.
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  out.machine = (f.reduce((a, b) => a + b, 0) - (f[3] ?? 0) - (f[4] ?? 0)) / TICKS;
  return out;
}

/** Cores used per part between two readings `s` seconds apart: "agents 0.12, sshd 0.05, zfs-fuse 0.30 of machine 1.95". */
function coresBetween(a: ReturnType<typeof cpuParts>, b: ReturnType<typeof cpuParts>, s: number): string {
  const c = (k: keyof typeof a): string => ((b[k] - a[k]) / s).toFixed(2);
  return `cores used: agents ${c('agents')}, sshd ${c('sshd')}, zfs-fuse ${c('zfsFuse')}, whole machine ${c('machine')} of 2`;
}

async function until<T>(what: string, ms: number, check: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await systemClock.sleep(250);
  }
}

function compose(): string {
  return `services:
  ${APP}:
    image: drover/redis:latest
    command: ${JSON.stringify(REDIS_ARGS)}
    ports: ["${PORT}:6379"]
    volumes: ["data:/data"]
    restart: always
    x-drover-healthcheck: { type: tcp, port: 6379, send: "PING\\r\\n", expect: "+PONG", interval: 1s, timeout: 2s, retries: 3 }
volumes:
  data:
    driver_opts:
      size: ${loadMiB + 1024}M
`;
}

async function mine(api: ApiClient, datasetId: string): Promise<ReplicationAnswer | null> {
  return (await api.replication()).find((d) => d.dataset_id === datasetId) ?? null;
}

async function measure(api: ApiClient, cluster: LocalCluster, writer: PacedWriter, via: Endpoint, datasetId: string, intervalS: number): Promise<Run> {
  // Off: the baseline, on the same data, just before.
  await api.setApplicationReplication(APP, { replicas: 0, interval_seconds: intervalS, retention: RETENTION });
  await systemClock.sleep(3_000);
  const offS = Math.max(10, Math.round(seconds / 2));
  say(`  off ${offS} s`);
  writer.take();
  await aofStalls(via);
  const cpuOff0 = replicationCpu(cluster);
  const partsOff0 = cpuParts(cluster);
  const offStarted = performance.now();
  await systemClock.sleep(offS * 1000);
  const off = writer.take();
  const aofStallsOff = await aofStalls(via);
  say(`  off: ${coresBetween(partsOff0, cpuParts(cluster), (performance.now() - offStarted) / 1000)}`);
  const cpuOffRate = (replicationCpu(cluster) - cpuOff0) / ((performance.now() - offStarted) / 1000);

  // On: once both replicas are seeded and ok, `seconds` of steady state.
  await api.setApplicationReplication(APP, { replicas: 2, interval_seconds: intervalS, retention: RETENTION, ...(flags.freeze ? { freeze_during_snapshot: true } : {}) });
  const seedStarted = performance.now();
  await until('both replicas ok', 600_000, async () => {
    const r = await mine(api, datasetId);
    return r !== null && r.replicas.length === 2 && r.replicas.every((x) => x.state === 'ok');
  });
  // The seeding step's snapshot is as old as the seeding took (a full send, 10-25 s at load):
  // measuring from it put the seed into the lag's p99. Steady state begins once each replica
  // holds a snapshot newer than the one it was seeded with.
  const seeded = new Map((await mine(api, datasetId))!.replicas.map((x) => [x.node, x.newest_snapshot]));
  await until('a step after the seeding on both replicas', 600_000, async () => {
    const r = await mine(api, datasetId);
    return r !== null && r.replicas.length === 2 && r.replicas.every((x) => x.state === 'ok' && x.newest_snapshot !== seeded.get(x.node));
  });
  say(`  on, interval ${intervalS} s: both replicas ok and past their seeding after ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`);
  // A phase after another one starts with that phase's snapshots falling off the grid's keep=all
  // minute at once (60 at 1 s), pruned on the primary and then on each replica before their
  // next steps: seconds of lag that belong to the change of interval, not to this interval's
  // steady state. Measure once every node holds no more than this interval's minute of them.
  const steady = Math.ceil(KEEP_ALL_S / intervalS) + 4;
  const pruneStarted = performance.now();
  const most = await until(`at most ${steady} snapshots of the dataset on every node`, 600_000, async () => {
    const counts = await Promise.all(cluster.nodes.map((n) => snapshotsOf(n.pool, datasetId)));
    return Math.max(...counts) <= steady ? counts : null;
  });
  const settled = new Map((await mine(api, datasetId))!.replicas.map((x) => [x.node, x.newest_snapshot]));
  await until('a step after the pruning on both replicas', 600_000, async () => {
    const r = await mine(api, datasetId);
    return r !== null && r.replicas.length === 2 && r.replicas.every((x) => x.state === 'ok' && x.newest_snapshot !== settled.get(x.node));
  });
  say(`  snapshots per node ${most.join(', ')} (≤ ${steady}) after ${((performance.now() - pruneStarted) / 1000).toFixed(1)} s more; measuring ${seconds} s`);
  const first = (await mine(api, datasetId))!;
  writer.take();
  await aofStalls(via);
  const cpuOn0 = replicationCpu(cluster);
  const partsOn0 = cpuParts(cluster);
  const onStarted = performance.now();
  const lags: number[] = [];
  let errors = 0;
  while (performance.now() - onStarted < seconds * 1000) {
    const tick = performance.now();
    const r = await mine(api, datasetId).catch(() => null);
    for (const x of r?.replicas ?? []) {
      if (x.lag_seconds !== null) lags.push(x.lag_seconds);
      if (x.state !== 'ok') errors++;
    }
    const wait = 100 - (performance.now() - tick);
    if (wait > 0) await systemClock.sleep(wait);
  }
  const onS = (performance.now() - onStarted) / 1000;
  const on = writer.take();
  const aofStallsOn = await aofStalls(via);
  const cpuOn = replicationCpu(cluster) - cpuOn0;
  say(`  on: ${coresBetween(partsOn0, cpuParts(cluster), onS)}`);
  const last = (await mine(api, datasetId))!;
  const sent = last.replicas.reduce((sum, x) => sum + x.bytes_sent_total - (first.replicas.find((y) => y.node === x.node)?.bytes_sent_total ?? x.bytes_sent_total), 0);
  if (errors > 0) say(`  ${errors} samples had a replica not ok (${last.replicas.map((x) => `${x.state}${x.last_error ? `: ${x.last_error.code} ${x.last_error.message}` : ''}`).join(', ')})`);

  lags.sort((a, b) => a - b);
  const offP99 = quantile(off.latencies.sort((a, b) => a - b), 0.99);
  const onP99 = quantile(on.latencies.sort((a, b) => a - b), 0.99);
  const gib = sent / 2 ** 30;
  return {
    intervalS,
    lagP50S: quantile(lags, 0.5),
    lagP99S: quantile(lags, 0.99),
    lagMaxS: lags.at(-1) ?? NaN,
    lagSamples: lags.length,
    replicatedBps: sent / 2 / onS,
    writtenBps: on.bytes / onS,
    writeP99OffMs: offP99,
    writeP99OnMs: onP99,
    writeP99RatioOnOff: onP99 / offP99,
    cpuSPerGiB: gib > 0 ? cpuOn / gib : NaN,
    extraCpuSPerGiB: gib > 0 ? (cpuOn - cpuOffRate * onS) / gib : NaN,
    writesOff: off.latencies.length,
    writesOn: on.latencies.length,
    aofStallsOff,
    aofStallsOn,
  };
}

async function main(): Promise<void> {
  const lease = await leaseSubnet();
  const name = `r${lease.subnet}`;
  let cluster: LocalCluster | null = null;
  let writer: PacedWriter | null = null;
  const runs: Run[] = [];
  const teardown = async (): Promise<void> => {
    await writer?.stop();
    if (cluster !== null) {
      const logs = join(tmpdir(), `drover-bench-replication-${process.pid}`);
      await cp(join(cluster.root, 'services'), logs, { recursive: true, filter: (src) => !src.includes('/control/') && !src.includes('/gates/') }).catch(() => undefined);
      say(`drover's logs of this run: ${logs}`);
    }
    await clusterDown(name, undefined, silentLogger()).catch((err: unknown) => say(`cluster down: ${String(err)}`));
    lease.release();
  };
  process.once('SIGINT', () => void teardown().then(() => process.exit(130)));
  let failure: unknown = null;
  try {
    say(`local cluster ${name}: 3 nodes, drover's processes …`);
    cluster = await clusterUp({ name, nodes: 3, subnet: lease.subnet, images: ['busybox', 'redis'], poolSizeMiB: 2 * loadMiB + 1536, fresh: true, log: silentLogger() });
    await startServices(cluster);
    const api = controlClient(cluster);
    const n1 = cluster.nodes[0]!;
    await api.deploy({
      project: APP,
      compose: { file: `${APP}.yml`, text: compose() },
      topology: { file: 'topology.yml', text: `version: 1\nnodes:\n  "${n1.address}": ["${APP}"]\n` },
    });
    await until(`${APP} healthy on ${n1.name}`, 180_000, async () => {
      const s = await api.application(APP);
      return s.state === 'running' && s.health === 'healthy';
    });
    const via = { host: n1.address, port: PORT };
    const dataset = (await api.datasets()).datasets.find((d) => d.metadata.name === `${APP}_data` && !d.deleted);
    if (!dataset) throw new Error(`no dataset ${APP}_data`);
    if (loadMiB > 0) {
      say(`loading ${loadMiB} MiB of Redis keys through ${n1.name}'s proxy`);
      await until(`PONG through ${n1.name}'s proxy`, 60_000, async () => {
        const c = await RedisConnection.connect(via, { connectTimeoutMs: 1_000, commandTimeoutMs: 2_000 });
        try {
          return await c.ping();
        } finally {
          c.close();
        }
      });
      await loadData(via, { prefix: 'bench:data:', bytes: loadMiB << 20 });
    }
    writer = new PacedWriter(via);
    writer.start();
    for (const intervalS of intervals) {
      say(`interval ${intervalS} s`);
      const run = await measure(api, cluster, writer, via, dataset.dataset_id, intervalS);
      say(`  lag p50 ${run.lagP50S.toFixed(2)} s, p99 ${run.lagP99S.toFixed(2)} s, max ${run.lagMaxS.toFixed(2)} s; write p99 ${run.writeP99OnMs.toFixed(1)} ms on, ${run.writeP99OffMs.toFixed(1)} ms off`);
      runs.push(run);
    }
    if (writer.errors > 0) say(`the writer saw ${writer.errors} failed writes`);
  } catch (err) {
    failure = err;
  } finally {
    await teardown();
  }
  report(runs);
  if (failure !== null) {
    say(`bench:replication stopped early (the table has the intervals measured before): ${failure instanceof Error ? failure.stack : String(failure)}`);
    process.exitCode = 1;
  }
}

function report(runs: Run[]): void {
  if (flags.json) {
    const out = runs.map(({ intervalS, lagP50S, lagP99S, lagMaxS, writeP99RatioOnOff }) => ({ intervalS, lagP50S, lagP99S, lagMaxS, writeP99RatioOnOff }));
    process.stdout.write(`${JSON.stringify({ runs: out })}\n`);
    return;
  }
  const kib = (b: number): string => `${(b / 1024).toFixed(0)} KiB/s`;
  const rows = [
    ['interval', 'lag p50', 'lag p99', 'lag max', 'p99 ≤ 2×int', 'replicated/replica', 'written', 'write p99 off', 'write p99 on', 'on ÷ off', 'CPU s/GiB', 'extra CPU s/GiB'],
    ...runs.map((r) => [
      `${r.intervalS} s`,
      `${r.lagP50S.toFixed(2)} s`,
      `${r.lagP99S.toFixed(2)} s`,
      `${r.lagMaxS.toFixed(2)} s`,
      r.lagP99S <= 2 * r.intervalS ? 'yes' : 'NO',
      kib(r.replicatedBps),
      kib(r.writtenBps),
      `${r.writeP99OffMs.toFixed(1)} ms`,
      `${r.writeP99OnMs.toFixed(1)} ms`,
      `${r.writeP99RatioOnOff.toFixed(2)}${r.writeP99RatioOnOff <= 1.2 ? '' : ' (NO)'}`,
      r.cpuSPerGiB.toFixed(0),
      r.extraCpuSPerGiB.toFixed(0),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, c) => cell.padStart(widths[c]!)).join('  ')}\n`);
  const stalls = (a: AofStalls): string => `${a.events} ≥ 50 ms, ${a.overHalfSecond} ≥ 0.5 s, max ${a.maxMs} ms`;
  process.stdout.write(`Redis's AOF write(2) stalls (latency monitor), off / on: ${runs.map((r) => `${r.intervalS} s: ${stalls(r.aofStallsOff)} / ${stalls(r.aofStallsOn)}`).join('; ')}\n`);
  process.stdout.write(`writes per phase: ${runs.map((r) => `${r.intervalS} s: ${r.writesOff} off, ${r.writesOn} on`).join('; ')}; lag samples: ${runs.map((r) => r.lagSamples).join(', ')}\n`);
  process.stdout.write('targets: lag p99 ≤ 2 × interval; write p99 on ÷ off ≤ 1.2\n');
}

await main();

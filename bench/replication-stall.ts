/**
 * `npx tsx bench/replication-stall.ts [--seconds 45] [--interval 2] [--load-mib 32] [--rate 100]
 *   [--fsync everysec|always|no] [--zfs-set logbias=throughput]`
 *
 * Where a slow write waits while a dataset replicates (issue 15, bench/RESULTS.md "Continuous
 * replication"). Redis on node 1 of a 3-node local cluster with its latency monitor on
 * (threshold 50 ms), and two paced writers of 1 KiB SETs: one through node 1's proxy, one
 * straight to the container's address (no proxy). An off phase (`replicas: 0`, half the
 * seconds) then an on phase (`replicas: 2`). Prints per phase and writer the p50/p99/max and
 * every write slower than 100 ms with its wall-clock time (to line up with the agents' logs,
 * kept under the printed directory), then Redis's `LATENCY LATEST` and the AOF counters of
 * `INFO persistence` (with each event's history: its second), the kernel stacks of Redis's
 * threads sampled every 10 ms during the on phase's writes slower than 300 ms, and Redis's log
 * lines about AOF rewrites. A slow write on both writers at once, with an `aof-*` latency event,
 * is Redis's main thread blocked on the dataset (the stack says where: `fuse_perform_write` →
 * `request_wait_answer` is zfs-fuse not answering); one on the proxied writer only is the proxy.
 * `--rate` is per writer; `--zfs-set` sets a property on the application's dataset first;
 * `--snapshot-phase` adds, before the on phase, `seconds` of snapshots taken by this script
 * every interval with replication still off (a snapshot alone, no drover step around it).
 * 2026-12-06: every stall ≥ 0.5 s lay inside a ~1 s `zfs snapshot` of the dataset.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { silentLogger } from '#common/log.ts';
import { systemClock } from '#common/clock.ts';
import { loadData, type Endpoint } from '../cli/demo/redis-load.ts';
import { RedisConnection } from '../cli/demo/redis-client.ts';
import { clusterDown, clusterUp, controlClient, startServices, type LocalCluster } from '../local-cluster/index.ts';
import { leaseSubnet } from '../test/support/cluster.ts';

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '45' },
    interval: { type: 'string', default: '2' },
    'load-mib': { type: 'string', default: '32' },
    rate: { type: 'string', default: '100' },
    fsync: { type: 'string', default: 'everysec' },
    'zfs-set': { type: 'string' },
    'snapshot-phase': { type: 'boolean', default: false },
  },
});
const seconds = Number(flags.seconds);
const intervalS = Number(flags.interval);
const loadMiB = Number(flags['load-mib']);
const rate = Number(flags.rate);
if (!Number.isInteger(seconds) || seconds < 5) throw new Error('--seconds: a whole number ≥ 5');
if (!Number.isInteger(intervalS) || intervalS < 1) throw new Error('--interval: whole seconds ≥ 1');
if (!Number.isInteger(loadMiB) || loadMiB < 0 || loadMiB > 1024) throw new Error('--load-mib: 0..1024');
if (!Number.isInteger(rate) || rate < 1 || rate > 2000) throw new Error('--rate: 1..2000');
if (flags['zfs-set'] !== undefined && !/^(logbias=(latency|throughput)|primarycache=(all|metadata|none)|compression=(on|off))$/.test(flags['zfs-set'])) throw new Error('--zfs-set: logbias=…, primarycache=… or compression=…');
if (!['everysec', 'always', 'no'].includes(flags.fsync)) throw new Error('--fsync: everysec, always or no');
const execFileAsync = promisify(execFile);
const say = (line: string): void => void process.stderr.write(`${line}\n`);

const APP = 'rstall';
const PORT = 6601;
const RETENTION = { primary: '1x1m(keep=all) | 24x1h', replicas: '1x1m(keep=all) | 24x1h' };
const REDIS_ARGS = ['redis-server', '--bind', '0.0.0.0', '--protected-mode', 'no', '--dir', '/data', '--appendonly', 'yes', '--appendfsync', flags.fsync, '--save', '', '--latency-monitor-threshold', '50'];

interface Sample {
  at: number; // wall clock, ms
  ms: number;
}

class PacedWriter {
  samples: Sample[] = [];
  errors = 0;
  private running = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly name: string,
    private readonly at: Endpoint,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  take(): Sample[] {
    const out = this.samples;
    this.samples = [];
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
        const started = Date.now() - (performance.now() - due);
        await client.run((redis) => redis.set(`stall:${this.name}:${seq}`, randomBytes(1024)));
        this.samples.push({ at: started, ms: performance.now() - due });
      } catch {
        this.errors++;
        client?.close();
        client = null;
      }
      due += period;
      if (performance.now() - due > 5_000) due = performance.now();
    }
    client?.close();
  }
}

function summary(samples: Sample[]): string {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const q = (p: number): string => (ms.length ? ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!.toFixed(1) : 'NaN');
  return `${ms.length} writes, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${ms.at(-1)?.toFixed(1) ?? 'NaN'} ms`;
}

function slow(samples: Sample[], name: string): string[] {
  return samples.filter((s) => s.ms > 100).map((s) => `${new Date(s.at).toISOString()} ${name} ${s.ms.toFixed(0)} ms`);
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

/**
 * Every 10 ms, the kernel stack of each of Redis's threads that is not idle (epoll or futex
 * wait): where a blocked write waits — on the FUSE daemon's answer or on the inode's lock.
 */
class StackSampler {
  readonly samples: Array<{ at: number; thread: string; frames: string }> = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly pid: number) {}

  start(): void {
    this.timer = setInterval(() => {
      let tasks: string[];
      try {
        tasks = readdirSync(`/proc/${this.pid}/task`);
      } catch {
        return;
      }
      for (const tid of tasks) {
        try {
          const stack = readFileSync(`/proc/${this.pid}/task/${tid}/stack`, 'utf8');
          const frames = [...stack.matchAll(/\] ([a-zA-Z0-9_.]+)\+/g)].map((m) => m[1]!);
          if (frames.length === 0 || frames.some((f) => /epoll_wait|futex_wait/.test(f))) continue;
          this.samples.push({ at: Date.now(), thread: readFileSync(`/proc/${this.pid}/task/${tid}/comm`, 'utf8').trim(), frames: frames.slice(0, 6).join('<') });
        } catch {
          // the thread ended meanwhile
        }
      }
    }, 10);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** The host pid of node 1's Redis container. */
function containerPid(cluster: LocalCluster): number {
  const host = cluster.nodes[0]!.dockerHost!;
  for (const id of execFileSync('docker', ['-H', host, 'ps', '-q'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean)) {
    const [image, pid] = execFileSync('docker', ['-H', host, 'inspect', '-f', '{{.Config.Image}} {{.State.Pid}}', id], { encoding: 'utf8' }).trim().split(' ');
    if (image?.includes('redis')) return Number(pid);
  }
  throw new Error('no Redis container on node 1');
}

/** The Redis container's own address on node 1's docker bridge. */
function containerAddress(cluster: LocalCluster): string {
  const host = cluster.nodes[0]!.dockerHost;
  if (host === null) throw new Error('node 1 runs no dockerd');
  const ids = execFileSync('docker', ['-H', host, 'ps', '-q'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  for (const id of ids) {
    const out = execFileSync('docker', ['-H', host, 'inspect', '-f', '{{.Config.Image}} {{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', id], { encoding: 'utf8' }).trim().split(/\s+/);
    if (out[0]?.includes('redis') && out[1]) return out[1];
  }
  throw new Error('no Redis container with an address on node 1');
}

async function redisInfo(at: Endpoint): Promise<string> {
  const c = await RedisConnection.connect(at);
  try {
    const latest = (await c.run((r) => r.call('LATENCY', 'LATEST'))) as unknown[][];
    const persistence = String(await c.run((r) => r.info('persistence')));
    const aof = persistence.split('\r\n').filter((l) => /^aof_(delayed_fsync|last_write_status|rewrites|pending_bio_fsync)/.test(l));
    const events = latest.map((e) => `${String(e[0])}: latest ${String(e[2])} ms, max ${String(e[3])} ms`);
    const history: string[] = [];
    for (const e of latest) {
      const rows = (await c.run((r) => r.call('LATENCY', 'HISTORY', String(e[0])))) as number[][];
      history.push(`${String(e[0])} history: ${rows.map(([t, ms]) => `${new Date(t! * 1000).toISOString().slice(11, 19)} ${ms} ms`).join(', ')}`);
    }
    await c.run((r) => r.call('LATENCY', 'RESET'));
    return [...history, `LATENCY LATEST: ${events.length ? events.join('; ') : '(no event over 50 ms)'}`, `INFO persistence: ${aof.join(', ')}`].join('\n');
  } finally {
    c.close();
  }
}

async function main(): Promise<void> {
  const lease = await leaseSubnet();
  const name = `s${lease.subnet}`;
  let cluster: LocalCluster | null = null;
  const writers: PacedWriter[] = [];
  const lines: string[] = [];
  let sampler: StackSampler | null = null;
  try {
    say(`local cluster ${name} …`);
    cluster = await clusterUp({ name, nodes: 3, subnet: lease.subnet, images: ['busybox', 'redis'], poolSizeMiB: 2 * loadMiB + 1536, fresh: true, log: silentLogger() });
    await startServices(cluster);
    const api = controlClient(cluster);
    const n1 = cluster.nodes[0]!;
    const compose = `services:\n  ${APP}:\n    image: drover/redis:latest\n    command: ${JSON.stringify(REDIS_ARGS)}\n    ports: ["${PORT}:6379"]\n    volumes: ["data:/data"]\n    restart: always\n    x-drover-healthcheck: { type: tcp, port: 6379, send: "PING\\r\\n", expect: "+PONG", interval: 1s, timeout: 2s, retries: 3 }\nvolumes:\n  data:\n    driver_opts:\n      size: ${loadMiB + 1024}M\n`;
    await api.deploy({ project: APP, compose: { file: `${APP}.yml`, text: compose }, topology: { file: 'topology.yml', text: `version: 1\nnodes:\n  "${n1.address}": ["${APP}"]\n` } });
    await until(`${APP} healthy`, 180_000, async () => {
      const s = await api.application(APP);
      return s.state === 'running' && s.health === 'healthy';
    });
    if (flags['zfs-set'] !== undefined) {
      const dataset = (await api.datasets()).datasets.find((d) => d.metadata.name === `${APP}_data` && !d.deleted);
      if (!dataset) throw new Error(`no dataset ${APP}_data`);
      execFileSync('zfs', ['set', flags['zfs-set'], `${n1.pool}/drover/${dataset.dataset_id}`]);
      say(`zfs set ${flags['zfs-set']} on ${n1.pool}/drover/${dataset.dataset_id}`);
    }
    const proxied = { host: n1.address, port: PORT };
    const direct = { host: containerAddress(cluster), port: 6379 };
    say(`proxied ${proxied.host}:${proxied.port}, direct ${direct.host}:${direct.port}`);
    if (loadMiB > 0) await loadData(direct, { prefix: 'stall:data:', bytes: loadMiB << 20 });
    sampler = new StackSampler(containerPid(cluster));
    sampler.start();
    writers.push(new PacedWriter('proxy', proxied), new PacedWriter('direct', direct));
    for (const w of writers) w.start();
    await api.setApplicationReplication(APP, { replicas: 0, interval_seconds: intervalS, retention: RETENTION });
    await systemClock.sleep(3_000);
    for (const w of writers) w.take();
    const offS = Math.max(10, Math.round(seconds / 2));
    say(`off ${offS} s (${new Date().toISOString()})`);
    await systemClock.sleep(offS * 1000);
    const off = writers.map((w) => w.take());
    lines.push(`off: proxy ${summary(off[0]!)}; direct ${summary(off[1]!)}`, await redisInfo(direct), ...slow(off[0]!, 'proxy'), ...slow(off[1]!, 'direct'));
    if (flags['snapshot-phase']) {
      // Replication still off: this script snapshots the dataset itself every interval (names
      // drover ignores; the throw-away cluster goes with them) — is a snapshot alone enough?
      const dataset = (await api.datasets()).datasets.find((d) => d.metadata.name === `${APP}_data` && !d.deleted)!;
      const path = `${n1.pool}/drover/${dataset.dataset_id}`;
      say(`snapshots by hand ${seconds} s (${new Date().toISOString()})`);
      const took: number[] = [];
      const end = performance.now() + seconds * 1000;
      for (let i = 0; performance.now() < end; i++) {
        const began = performance.now();
        await execFileAsync('zfs', ['snapshot', `${path}@bystall-${i}`]);
        took.push(performance.now() - began);
        await systemClock.sleep(intervalS * 1000 - (performance.now() - began));
      }
      const by = writers.map((w) => w.take());
      const sorted = [...took].sort((x, y) => x - y);
      lines.push(
        `snapshots by hand: proxy ${summary(by[0]!)}; direct ${summary(by[1]!)}; ${took.length} snapshots, p50 ${sorted[sorted.length >> 1]!.toFixed(0)} ms, ≥ 0.7 s: ${took.filter((x) => x >= 700).map((x) => x.toFixed(0)).join(', ') || 'none'}`,
        await redisInfo(direct),
        ...slow(by[1]!, 'direct'),
      );
    }
    await api.setApplicationReplication(APP, { replicas: 2, interval_seconds: intervalS, retention: RETENTION });
    await until('both replicas ok, past seeding', 600_000, async () => {
      const r = (await api.replication()).find((d) => d.replicas.length === 2);
      return r?.replicas.every((x) => x.state === 'ok');
    });
    await systemClock.sleep(2 * intervalS * 1000);
    for (const w of writers) w.take();
    say(`on ${seconds} s (${new Date().toISOString()})`);
    await systemClock.sleep(seconds * 1000);
    const on = writers.map((w) => w.take());
    const slowOn = [...slow(on[0]!, 'proxy'), ...slow(on[1]!, 'direct')].sort();
    lines.push(`on: proxy ${summary(on[0]!)}; direct ${summary(on[1]!)}`, await redisInfo(direct), ...slowOn);
    sampler.stop();
    // Redis's threads off their idle wait, during the on phase's writes slower than 300 ms.
    const stalls = on[1]!.filter((x) => x.ms > 300);
    const during = sampler.samples.filter((x) => stalls.some((w) => x.at >= w.at && x.at <= w.at + w.ms));
    const counts = new Map<string, number>();
    for (const x of during) counts.set(`${x.thread} ${x.frames}`, (counts.get(`${x.thread} ${x.frames}`) ?? 0) + 1);
    lines.push(`stacks during stalls (${during.length} samples):`, ...[...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${n} ${k}`));
    const all = new Map<string, number>();
    for (const x of sampler.samples) all.set(`${x.thread} ${x.frames}`, (all.get(`${x.thread} ${x.frames}`) ?? 0) + 1);
    lines.push(`stacks, whole run (${sampler.samples.length} samples):`, ...[...all].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, n]) => `  ${n} ${k}`));
  } finally {
    sampler?.stop();
    for (const w of writers) await w.stop();
    if (cluster !== null) {
      const host = cluster.nodes[0]!.dockerHost!;
      try {
        for (const id of execFileSync('docker', ['-H', host, 'ps', '-q'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean)) {
          const log = execFileSync('docker', ['-H', host, 'logs', '-t', id], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
          lines.push(...log.split('\n').filter((l) => /rewrit|fsync|slow/i.test(l)).map((l) => `redis: ${l}`));
        }
      } catch (err) {
        say(`docker logs: ${String(err)}`);
      }
      const logs = join(tmpdir(), `drover-bench-stall-${process.pid}`);
      await cp(join(cluster.root, 'services'), logs, { recursive: true, filter: (src) => !src.includes('/control/') && !src.includes('/gates/') }).catch(() => undefined);
      say(`drover's logs of this run: ${logs}`);
    }
    await clusterDown(name, undefined, silentLogger()).catch((err: unknown) => say(`cluster down: ${String(err)}`));
    lease.release();
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();

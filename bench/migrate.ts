/**
 * `npm run bench:migrate [-- --json] [--cases ballast,redis,postgres] [--sizes 256,1024] [--load-mib 8]
 *   [--moves 5] [--data-sizes 256,1024] [--pg-mib 256] [--pg-churn-mib 64] [--cold-start]`
 *
 * `--cold-start` also measures each real-data application's own start after dropping the
 * machine's page cache (as root): a moved application reads its data on a node that never had
 * it in memory, so its start there is the cold one; the table shows the overhead against both.
 *
 * Two kinds of case in one run. The ballast case (below): Redis with little data in it and
 * a ballast file, `--moves` moves back and forth per size, against a naive move. The
 * real-data cases (migrate-cases.ts): Redis with `--data-sizes` MiB of keys and PostgreSQL
 * with `--pg-mib` of rows under a committing writer, each against the application's own
 * stop and start-to-ready measured in place. Every move prints its phase breakdown from
 * the agents' logs (move-breakdown.ts). A short run: `--cases ballast,postgres --sizes 256
 * --moves 2 --pg-mib 64 --pg-churn-mib 16`.
 *
 * A move under load (docs/DESIGN.md §15): Redis with a dataset of each size moved from node 1 to
 * node 2 of a 3-node local cluster running drover's real processes, while a client writes
 * continuously through node 1's proxy, recording every acknowledged write (it reconnects
 * on a closed connection and re-sends the write that was not acknowledged). Measured:
 *   pause   the longest gap between two consecutive acknowledged writes
 *   failed  write requests that failed: a connection refused or reset, an error reply, or a
 *           re-sent write that failed again
 *   lost    acknowledged writes missing when read back after the move
 * and, in the same run, the same figures for a naive move of the same data (stop → full
 * `zfs send` over drover's ssh transport → start on node 3; the client reconnects to node
 * 3 as soon as anything listens there), as the baseline.
 *
 * The dataset's size: `--load-mib` of Redis keys (SET of random values, which Redis keeps
 * in memory and its append-only file) plus a file of random bytes written into the dataset
 * from the host before the move, up to the size. The file is faster to write than SETs,
 * and it keeps Redis's own start-up (loading its data) the same at both sizes, so the
 * pause shows what drover's move costs, not how long Redis takes to read 1 GiB.
 *
 * Prints a table and the ratios; `--json` prints only
 * `{"sizes": [{"sizeMiB","pauseMs","failed","lost","naivePauseMs","bytesSent"}, …],
 *   "cases": [{"app","sizeMiB","pauseMs","ownStopMs","ownStartMs","overheadMs","lost","failed"}, …]}`
 * (one entry in `cases` per move; the ballast's `pauseMs` in `sizes` is its first move's).
 */
import { randomFillSync, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { cp, open, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { ApiClient } from '#common/api-client.ts';
import { silentLogger } from '#common/log.ts';
import { isTerminal } from '#common/migration-protocol.ts';
import type { Migration } from '#common/model.ts';
import { AckedWriter, loadData, longestGapWithin, type Endpoint, type WriterReport } from '../cli/demo/redis-load.ts';
import { RedisConnection } from '../cli/demo/redis-client.ts';
import { systemClock } from '#common/clock.ts';
import { clusterDown, clusterUp, controlClient, controlUrl, startServices, type LocalCluster, type LocalImage, type LocalNode } from '../local-cluster/index.ts';
import { SshPeer } from '../convergence-agent/transfer/ssh-peer.ts';
import { streamStep } from '../convergence-agent/transfer/stream-step.ts';
import { ZfsStore } from '../convergence-agent/zfs/zfs.ts';
import { leaseSubnet } from '../test/support/cluster.ts';
import { postgresCase, redisCase, type CaseContext, type CaseResult } from './migrate-cases.ts';
import { breakdownOf, describeBreakdown } from './move-breakdown.ts';
import { describeSplit, redisStartOf, splitReady } from './app-start.ts';
import { report, type Result } from './migrate-report.ts';
import { ownStopStart } from './own-stop-start.ts';

const { values: flags } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    cases: { type: 'string', default: 'ballast,redis,postgres' },
    sizes: { type: 'string', default: '256,1024' },
    'load-mib': { type: 'string', default: '8' },
    moves: { type: 'string', default: '5' },
    'data-sizes': { type: 'string', default: '256,1024' },
    'pg-mib': { type: 'string', default: '256' },
    'pg-churn-mib': { type: 'string', default: '64' },
    'cold-start': { type: 'boolean', default: false },
  },
});
const cases = new Set(flags.cases.split(','));
for (const c of cases) if (!['ballast', 'redis', 'postgres'].includes(c)) throw new Error(`--cases: "${c}" is not one of ballast, redis, postgres`);
const moves = Number(flags.moves);
const dataSizes = flags['data-sizes'].split(',').map(Number);
const pgMiB = Number(flags['pg-mib']);
const pgChurnMiB = Number(flags['pg-churn-mib']);
if (!Number.isInteger(moves) || moves < 1 || moves > 20) throw new Error('--moves: 1..20');
if (dataSizes.some((s) => !Number.isInteger(s) || s < 16 || s > 4096)) throw new Error('--data-sizes: MiB, each 16..4096');
if (!Number.isInteger(pgMiB) || pgMiB < 16 || pgMiB > 4096) throw new Error('--pg-mib: 16..4096');
if (!Number.isInteger(pgChurnMiB) || pgChurnMiB < 0 || pgChurnMiB > 1024) throw new Error('--pg-churn-mib: 0..1024');
const sizes = flags.sizes.split(',').map(Number);
const loadMiB = Number(flags['load-mib']);
if (sizes.some((s) => !Number.isInteger(s) || s < 64 || s > 8192)) throw new Error('--sizes: MiB, each 64..8192');
if (!Number.isInteger(loadMiB) || loadMiB < 0 || loadMiB >= Math.min(...sizes)) throw new Error('--load-mib must be below the smallest size');
const say = (line: string): void => void process.stderr.write(`${line}\n`);
const caseResults: CaseResult[] = [];
const REDIS_ARGS = ['redis-server', '--bind', '0.0.0.0', '--protected-mode', 'no', '--dir', '/data', '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--auto-aof-rewrite-min-size', '8mb'];


/**
 * How long one move may take: generous (a quiet machine sends ~400 MiB/s through zfs-fuse,
 * see bench/RESULTS.md; a crowded one well under 2 MiB/s), but bounded.
 */
function moveBoundMs(sizeMiB: number): number {
  return 120_000 + sizeMiB * 1_200;
}

function compose(size: number, port: number): string {
  return `services:
  r${size}:
    image: drover/redis:latest
    command: ${JSON.stringify(REDIS_ARGS)}
    ports: ["${port}:6379"]
    volumes: ["data:/data"]
    restart: always
    x-drover-healthcheck: { type: tcp, port: 6379, send: "PING\\r\\n", expect: "+PONG", interval: 1s, timeout: 2s, retries: 3 }
volumes:
  data:
    driver_opts:
      size: ${size + 256}M
`;
}

async function fillRandom(path: string, mib: number): Promise<void> {
  const out = createWriteStream(path, { highWaterMark: 4 << 20 });
  const block = Buffer.allocUnsafe(1 << 20);
  for (let i = 0; i < mib; i++) {
    randomFillSync(block);
    if (!out.write(Buffer.from(block))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  // On disk before the move begins, as data that has been there a while would be: otherwise
  // the first snapshot flushes it all, and zfs-fuse stalls the application's writes meanwhile.
  const file = await open(path, 'r+');
  try {
    await file.sync();
  } finally {
    await file.close();
  }
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

async function pong(at: Endpoint): Promise<boolean> {
  const client = await RedisConnection.connect(at, { connectTimeoutMs: 1_000, commandTimeoutMs: 2_000 });
  try {
    return await client.ping();
  } finally {
    client.close();
  }
}

/** Writes for a while, runs `move`, writes a little longer, reads everything back. */
async function underLoad(target: () => Endpoint, verifyAt: () => Endpoint, move: () => Promise<void>): Promise<{ report: WriterReport; lost: number }> {
  const writer = new AckedWriter(target, { prefix: 'bench:write:' });
  writer.start();
  await systemClock.sleep(2_000);
  try {
    await move();
  } finally {
    await systemClock.sleep(1_500);
    await writer.stop();
  }
  const report = writer.report();
  const { lost } = await writer.verify(verifyAt());
  return { report, lost: lost.length };
}

async function droverMove(api: ApiClient, cluster: LocalCluster, size: number, port: number): Promise<Omit<Result, 'naivePauseMs' | 'naiveFailed' | 'naiveLost' | 'naiveBytes'>> {
  const [n1, n2] = cluster.nodes as [LocalNode, LocalNode];
  const app = `r${size}`;
  await api.deploy({
    project: `m${size}`,
    compose: { file: `bench-${size}.yml`, text: compose(size, port) },
    topology: { file: 'topology.yml', text: `version: 1\nnodes:\n  "${n1.address}": ["${app}"]\n` },
  });
  const status = await until(`${app} healthy on ${n1.name}`, 180_000, async () => {
    const s = await api.application(app);
    return s.state === 'running' && s.health === 'healthy' ? s : null;
  });
  const via = { host: n1.address, port };
  await until(`PONG through ${n1.name}'s proxy`, 60_000, () => pong(via));
  if (loadMiB > 0) await loadData(via, { prefix: 'bench:data:', bytes: loadMiB << 20 });
  const { datasets } = await api.datasets();
  const dataset = datasets.find((d) => d.metadata.name === `m${size}_data` && !d.deleted);
  const state = (await api.datasetStates()).find((d) => d.dataset_id === dataset?.dataset_id && d.primary === status.node_uuid);
  if (!state?.path) throw new Error(`no mounted dataset for ${app} on ${n1.name}`);
  say(`  writing a ${size - loadMiB} MiB file of random bytes into the dataset (${state.path})`);
  await fillRandom(join(state.path, 'ballast.bin'), size - loadMiB);

  const own = await ownStopStart(n1.dockerHost!, `drover-${app}`, () => pong(via), { load: new AckedWriter(() => via, { prefix: 'bench:own:' }) });
  say(`  ${app} in place on ${n1.name}: own stop ${own.stopMs} ms, own start-to-ready ${own.startMs} ms`);
  const inPlace = await redisStartOf(n1.dockerHost!, `drover-${app}`);
  if (inPlace) {
    const s = splitReady(inPlace, null, null);
    say(`  its last start in place by Redis's log (ms): load ${s.load ?? '?'}${s.loadSeconds === null ? '' : ` (Redis: ${s.loadSeconds.toFixed(3)} s)`} · afterLoad ${s.afterLoad ?? '?'}`);
  }
  await until(`${app} healthy again`, 120_000, async () => (await api.application(app)).health === 'healthy');

  const moved: CaseResult[] = [];
  let first: Omit<Result, 'naivePauseMs' | 'naiveFailed' | 'naiveLost' | 'naiveBytes'> | null = null;
  for (let i = 0; i < moves; i++) {
    const [from, to] = i % 2 === 0 ? [n1, n2] : [n2, n1];
    let migration: Migration | null = null;
    const started = performance.now();
    const { report, lost } = await underLoad(
      () => via,
      () => via,
      async () => {
        const answer = await api.moveApplication(app, to.uuid);
        if (answer.migration === null) throw new Error(`${app} is already on ${to.name}`);
        migration = answer.migration;
        let line = '';
        while (!isTerminal(migration.phase)) {
          await systemClock.sleep(250);
          migration = await api.migration(migration.id);
          const now = `  drover  ${migration.phase.padEnd(8)} round ${migration.round}  ${(migration.bytes_sent / 2 ** 20).toFixed(0)} MiB sent`;
          if (now !== line && !flags.json) say(now);
          line = now;
          if (performance.now() - started > moveBoundMs(size)) throw new Error(`the move took over ${moveBoundMs(size) / 60_000} minutes (still in ${migration.phase})`);
        }
        if (migration.phase === 'failed') throw new Error(`migration failed: ${migration.error}`);
      },
    );
    const end = migration as Migration | null;
    describeRun('drover', report, started, end);
    const services = join(cluster.root, 'services');
    const breakdown = end === null ? null : await breakdownOf(end.id, join(services, `${from.name}-agent.log`), join(services, `${to.name}-agent.log`), { controlLog: join(services, 'control.log'), proxyLogs: cluster.nodes.map((n) => join(services, `${n.name}-proxy.log`)) });
    const pauseMs = Math.round(report.pauseMs);
    const r: CaseResult = { app: 'redis-ballast', sizeMiB: size, pauseMs, ownStopMs: own.stopMs, ownStartMs: own.startMs, overheadMs: pauseMs - own.stopMs - own.startMs, ownColdStartMs: null, overheadColdMs: null, lost, failed: report.failed, acked: report.acked, bytes: end?.bytes_sent ?? 0, breakdown, failures: report.failures };
    moved.push(r);
    say(`  move ${i + 1} ${from.name} → ${to.name}: pause ${pauseMs} ms (overhead ${r.overheadMs}), failed ${report.failed}, lost ${lost} of ${report.acked}`);
    if (breakdown) say(`    phases (ms): ${describeBreakdown(breakdown)}`);
    const redisStart = breakdown === null ? null : await redisStartOf(to.dockerHost!, `drover-${app}`);
    if (breakdown && redisStart) say(`    appReady split by Redis's log (ms): ${describeSplit(splitReady(redisStart, breakdown.marks.gateOpenedAt, breakdown.marks.healthyAt))}`);
    first ??= {
      sizeMiB: size,
      pauseMs,
      failed: report.failed,
      lost,
      bytesSent: end?.bytes_sent ?? 0,
      acked: report.acked,
      rounds: end?.round ?? 0,
      cutoverMs: end?.cutover_ms ?? null,
      moveMs: Math.round(performance.now() - started),
    };
  }
  caseResults.push(...moved);
  return first!;
}

/** Where the longest gap fell (seconds from the start of the move) and the failures, on stderr. */
function describeRun(what: string, report: WriterReport, moveStarted: number, migration: Migration | null): void {
  const at = (t: number): string => `+${((t - moveStarted) / 1000).toFixed(1)} s`;
  if (report.pauseAt !== null) say(`  ${what}: longest gap from ${at(report.pauseAt)} to ${at(report.pauseAt + report.pauseMs)} after the move began`);
  if (migration?.cutover_started_at != null) {
    const cutoverAt = migration.cutover_started_at - performance.timeOrigin;
    say(`  ${what}: cutover began at ${at(cutoverAt)} and lasted ${migration.cutover_ms ?? '?'} ms (as the source measured it)`);
    const inCutover = longestGapWithin(report.ackTimes, cutoverAt, cutoverAt + (migration.cutover_ms ?? 0));
    say(`  ${what}: longest gap during the cutover ${Math.round(inCutover)} ms${inCutover < report.pauseMs ? ' (the longest of all fell outside it)' : ''}`);
  }
  for (const f of report.failures.slice(0, 5)) say(`  ${what}: failed request at ${at(f.at)}: ${f.kind}: ${f.message}`);
}

/** The baseline: the same data, stopped, sent whole over drover's ssh transport, started on node 3. */
async function naiveMove(cluster: LocalCluster, size: number, port: number): Promise<{ pauseMs: number; failed: number; lost: number; bytes: number }> {
  const [n1, , n3] = cluster.nodes as [LocalNode, LocalNode, LocalNode];
  const docker = (node: LocalNode, ...args: string[]) => execa('docker', ['-H', node.dockerHost!, ...args], { timeout: 120_000 });
  const source = new ZfsStore({ pool: n1.pool, log: silentLogger() });
  const target = new ZfsStore({ pool: n3.pool, log: silentLogger() });
  const id = randomUUID();
  const name = `naive-${size}`;
  const dataset = await source.createDataset(id, { maximumSize: null });
  const peer = new SshPeer({
    id: n3.uuid,
    host: n3.ssh!.host,
    port: n3.ssh!.port,
    user: n3.ssh!.user,
    hostKeyFingerprint: n3.ssh!.hostKeyFingerprint,
    privateKey: await readFile(cluster.sshClientKey.privateKeyPath),
    pool: n3.pool,
  });
  const run = (node: LocalNode, mountpoint: string) =>
    docker(node, 'run', '-d', '--name', name, '--stop-timeout', '10', '-p', `${node.address}:${port}:6379`, '-v', `${mountpoint}:/data`, 'drover/redis:latest', ...REDIS_ARGS);
  let current: Endpoint = { host: n1.address, port };
  let bytes = 0;
  let moveStarted = performance.now();
  try {
    await run(n1, dataset.mountpoint!);
    await until(`naive Redis on ${n1.name}`, 60_000, () => pong(current));
    if (loadMiB > 0) await loadData(current, { prefix: 'bench:data:', bytes: loadMiB << 20 });
    await fillRandom(join(dataset.mountpoint!, 'ballast.bin'), size - loadMiB);
    await peer.features();
    const { report, lost } = await underLoad(
      () => current,
      () => current,
      async () => {
        moveStarted = performance.now();
        await docker(n1, 'stop', name);
        await source.createSnapshot(id, 'drover-naive');
        const step = await peer.beginStep(id);
        try {
          const sink = step.receive({ resumable: false, full: true });
          bytes = await streamStep({ send: source.send({ datasetId: id, snapshot: 'drover-naive', base: null }), sink, stallMs: 60_000 });
        } finally {
          await step.end();
        }
        await target.setReadonly(id, false);
        await target.mount(id);
        const received = await target.getDataset(id);
        await run(n3, received!.mountpoint!);
        current = { host: n3.address, port };
      },
    );
    describeRun('naive', report, moveStarted, null);
    return { pauseMs: Math.round(report.pauseMs), failed: report.failed, lost, bytes };
  } finally {
    await peer.close();
    await docker(n1, 'rm', '-f', name).catch(() => undefined);
    await docker(n3, 'rm', '-f', name).catch(() => undefined);
  }
}

/** zfs-fuse's ARC limit as its kstats give it (Debian's zfsrc: 100 MiB), for the record of the run. */
async function arcLimit(): Promise<string> {
  const bytes = await readFile('/zfs-kstat/zfs/arcstats/c_max', 'utf8').catch(() => null);
  return bytes === null ? 'unknown (no /zfs-kstat)' : `${Math.round(Number(bytes.trim()) / 2 ** 20)} MiB`;
}

async function main(): Promise<void> {
  const lease = await leaseSubnet();
  const name = `m${lease.subnet}`;
  let cluster: LocalCluster | null = null;
  const results: Result[] = [];
  const teardown = async (): Promise<void> => {
    if (cluster !== null) {
      // The services' logs go with the cluster; keep them for a look at where the time went.
      const logs = join(tmpdir(), `drover-bench-migrate-${process.pid}`);
      await cp(join(cluster.root, 'services'), logs, { recursive: true, filter: (src) => !src.includes('/control/') && !src.includes('/gates/') }).catch(() => undefined);
      say(`drover's logs of this run: ${logs}`);
    }
    await clusterDown(name, undefined, silentLogger()).catch((err: unknown) => say(`cluster down: ${String(err)}`));
    lease.release();
  };
  process.once('SIGINT', () => void teardown().then(() => process.exit(130)));
  let failure: unknown = null;
  try {
    // Node 1 keeps drover's source copy and the naive source of every size; nodes 2 and 3 one copy each.
    const ballast = cases.has('ballast') ? sizes.reduce((a, b) => a + b, 0) : 0;
    const data = cases.has('redis') ? dataSizes.reduce((a, b) => a + b, 0) : 0;
    const pg = cases.has('postgres') ? pgMiB + 4 * pgChurnMiB : 0;
    const poolMiB = 2 * ballast + 3 * data + 3 * pg + 1024;
    say(`local cluster ${name}: 3 nodes, drover's processes, pools of ${poolMiB} MiB …`);
    say(`zfs-fuse's ARC limit: ${await arcLimit()} (a moved application reads its data through zfs-fuse: docs/DESIGN.md §36)`);
    const images: LocalImage[] = ['busybox', 'redis', ...(cases.has('postgres') ? (['postgres'] as const) : [])];
    cluster = await clusterUp({ name, nodes: 3, subnet: lease.subnet, images, poolSizeMiB: poolMiB, log: silentLogger() });
    await startServices(cluster);
    const api = controlClient(cluster);
    if (cases.has('ballast')) {
      for (const [i, size] of sizes.entries()) {
        say(`${size} MiB ballast: ${moves} drover move(s) between ${cluster.nodes[0]!.name} and ${cluster.nodes[1]!.name} under load`);
        const drover = await droverMove(api, cluster, size, 6400 + i);
        say(`${size} MiB: naive move ${cluster.nodes[0]!.name} → ${cluster.nodes[2]!.name} (stop, full send, start)`);
        const naive = await naiveMove(cluster, size, 6500 + i);
        say(`  pause ${naive.pauseMs} ms, failed ${naive.failed}, lost ${naive.lost}, ${(naive.bytes / 2 ** 20).toFixed(0)} MiB sent`);
        results.push({ ...drover, naivePauseMs: naive.pauseMs, naiveFailed: naive.failed, naiveLost: naive.lost, naiveBytes: naive.bytes });
      }
    }
    const ctx: CaseContext = { api, cluster, say, until, coldStart: flags['cold-start'] };
    if (cases.has('redis')) {
      for (const [i, size] of dataSizes.entries()) {
        say(`redis with ${size} MiB of keys: drover move ${cluster.nodes[0]!.name} → ${cluster.nodes[1]!.name} under load`);
        caseResults.push(...(await redisCase(ctx, size, 6600 + i)));
      }
    }
    if (cases.has('postgres')) {
      say(`postgres with ${pgMiB} MiB of rows (+${pgChurnMiB} MiB before each stop): two moves, without and with the before_stop hook`);
      caseResults.push(...(await postgresCase(ctx, pgMiB, pgChurnMiB, 6700)));
    }
  } catch (err) {
    failure = err;
  } finally {
    await teardown();
  }
  report(results, caseResults, sizes, flags.json);
  if (failure !== null) {
    say(`bench:migrate stopped early (the tables have the moves measured before): ${failure instanceof Error ? failure.message : String(failure)}`);
    process.exitCode = 1;
  }
}

await main();

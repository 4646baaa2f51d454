/**
 * bench:migrate's real-data cases (docs/DESIGN.md §15): the data is *in* the application.
 *   redis     `sizeMiB` of keys SET through the client, persistence as in examples/redis
 *             (append-only file, fsync each second, compacted past 8 MiB); one move n1 → n2.
 *   postgres  drover/postgres (initdb on first start, data on the volume, SIGTERM = fast
 *             shutdown) with `sizeMiB` of rows, and `churnMiB` more inserted right before each
 *             stop (a database just after a busy spell: dirty buffers for the shutdown
 *             checkpoint); a writer commits one row per acknowledged write. Two moves in the
 *             same run: n1 → n2 as deployed, then n2 → n1 with `x-drover.move.before_stop:
 *             psql … -c CHECKPOINT` (before and after the hook).
 * The health checks allow 60 failed probes: a database loading gigabytes is starting, not
 * broken, and a restart by the agent in the middle of a measured start would measure the
 * restart (the first runs did: 17 s "own start" for PostgreSQL).
 * Each case first measures the application's own stop and start-to-ready in place on n1
 * (own-stop-start.ts; for the hooked move, with the hook run first as the move runs it), so
 * overhead = pause − (own stop + own start-to-ready) is what drover adds.
 */
import { join } from 'node:path';
import { ApiClient } from '#common/api-client.ts';
import { isTerminal } from '#common/migration-protocol.ts';
import type { Migration } from '#common/model.ts';
import { systemClock } from '#common/clock.ts';
import { AckedWriter, loadData, type WriterReport } from '../cli/demo/redis-load.ts';
import { RedisConnection } from '../cli/demo/redis-client.ts';
import type { LocalCluster, LocalNode } from '../local-cluster/index.ts';
import { breakdownOf, describeBreakdown, type Breakdown } from './move-breakdown.ts';
import { ownStopStart, type OwnTimes } from './own-stop-start.ts';
import { PgConnection, type PgEndpoint } from './pg-client.ts';
import { PgAckedWriter, loadRows, prepareTables } from './pg-load.ts';

export interface CaseResult {
  app: string;
  sizeMiB: number;
  pauseMs: number;
  ownStopMs: number | null;
  ownStartMs: number | null;
  overheadMs: number | null;
  /** Own start with a dropped page cache (`--cold-start`), and the overhead against it. */
  ownColdStartMs: number | null;
  overheadColdMs: number | null;
  lost: number;
  failed: number;
  acked: number;
  bytes: number;
  breakdown: Breakdown | null;
  failures: WriterReport['failures'];
}

export interface CaseContext {
  api: ApiClient;
  cluster: LocalCluster;
  say: (line: string) => void;
  until: <T>(what: string, ms: number, check: () => Promise<T | null | undefined | false>) => Promise<T>;
  /** Also measure each application's own start with the page cache dropped (root; the whole machine's cache). */
  coldStart: boolean;
}

const REDIS_ARGS = ['redis-server', '--bind', '0.0.0.0', '--protected-mode', 'no', '--dir', '/data', '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--auto-aof-rewrite-min-size', '8mb'];
const CHECKPOINT = ['psql', '-h', '127.0.0.1', '-U', 'postgres', '-q', '-c', 'CHECKPOINT'];

function redisCompose(app: string, size: number, port: number): string {
  return `services:
  ${app}:
    image: drover/redis:latest
    command: ${JSON.stringify(REDIS_ARGS)}
    ports: ["${port}:6379"]
    volumes: ["data:/data"]
    restart: always
    x-drover-healthcheck: { type: tcp, port: 6379, send: "PING\\r\\n", expect: "+PONG", interval: 1s, timeout: 2s, retries: 60 }
volumes:
  data:
    driver_opts:
      size: ${Math.ceil(size * 2.5) + 256}M
`;
}

function postgresCompose(app: string, size: number, port: number, hook: boolean): string {
  return `services:
  ${app}:
    image: drover/postgres:latest
    ports: ["${port}:5432"]
    volumes: ["data:/data"]
    restart: always
    stop_grace_period: 60s
    healthcheck: { test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-q"], interval: 1s, timeout: 2s, retries: 60 }
${hook ? `    x-drover: { move: { before_stop: { exec: ${JSON.stringify(CHECKPOINT)}, timeout: 120s } } }\n` : ''}volumes:
  data:
    driver_opts:
      size: ${size * 3 + 512}M
`;
}

async function redisReady(at: PgEndpoint): Promise<boolean> {
  const client = await RedisConnection.connect(at, { connectTimeoutMs: 1_000, commandTimeoutMs: 1_000 });
  try {
    return await client.ping();
  } finally {
    client.close();
  }
}

async function pgReady(at: PgEndpoint): Promise<boolean> {
  const conn = await PgConnection.connect(at, { timeoutMs: 1_000 });
  try {
    return (await conn.query('SELECT 1', 1_000))[0]?.[0] === '1';
  } finally {
    conn.close();
  }
}

interface Writer {
  start(): void;
  stop(): Promise<WriterReport>;
  report(): WriterReport;
  lost(): Promise<number>;
}

async function deployOn(ctx: CaseContext, project: string, app: string, compose: string, node: LocalNode): Promise<void> {
  await ctx.api.deploy({
    project,
    compose: { file: `${project}.yml`, text: compose },
    topology: { file: 'topology.yml', text: `version: 1\nnodes:\n  "${node.address}": ["${app}"]\n` },
  });
}

async function healthyOn(ctx: CaseContext, app: string, node: LocalNode): Promise<void> {
  await ctx.until(`${app} healthy on ${node.name}`, 300_000, async () => {
    const s = await ctx.api.application(app);
    return s.state === 'running' && s.health === 'healthy' && s.node_uuid === node.uuid;
  });
}

/** Moves `app` to `to` while `writer` writes; the pause, failures, lost writes and the breakdown. */
async function moveUnderLoad(ctx: CaseContext, app: string, from: LocalNode, to: LocalNode, writer: Writer): Promise<{ report: WriterReport; lost: number; migration: Migration; breakdown: Breakdown | null }> {
  writer.start();
  await systemClock.sleep(2_000);
  let migration: Migration | null = null;
  try {
    const answer = await ctx.api.moveApplication(app, to.uuid);
    if (answer.migration === null) throw new Error(`${app} is already on ${to.name}`);
    migration = answer.migration;
    const started = Date.now();
    while (!isTerminal(migration.phase)) {
      await systemClock.sleep(250);
      migration = await ctx.api.migration(migration.id);
      if (Date.now() - started > 900_000) throw new Error(`the move of ${app} took over 15 minutes (still in ${migration.phase})`);
    }
    if (migration.phase === 'failed') throw new Error(`migration of ${app} failed: ${migration.error}`);
  } finally {
    await systemClock.sleep(1_500);
    await writer.stop();
  }
  const report = writer.report();
  const lost = await writer.lost();
  const services = join(ctx.cluster.root, 'services');
  const breakdown = await breakdownOf(migration.id, join(services, `${from.name}-agent.log`), join(services, `${to.name}-agent.log`), { controlLog: join(services, 'control.log'), proxyLogs: ctx.cluster.nodes.map((n) => join(services, `${n.name}-proxy.log`)) });
  return { report, lost, migration, breakdown };
}

function result(app: string, sizeMiB: number, own: OwnTimes | null, moved: Awaited<ReturnType<typeof moveUnderLoad>>): CaseResult {
  const pauseMs = Math.round(moved.report.pauseMs);
  return {
    app,
    sizeMiB,
    pauseMs,
    ownStopMs: own?.stopMs ?? null,
    ownStartMs: own?.startMs ?? null,
    overheadMs: own === null ? null : pauseMs - own.stopMs - own.startMs,
    ownColdStartMs: own?.coldStartMs ?? null,
    overheadColdMs: own?.coldStartMs == null ? null : pauseMs - own.stopMs - own.coldStartMs,
    lost: moved.lost,
    failed: moved.report.failed,
    acked: moved.report.acked,
    bytes: moved.migration.bytes_sent,
    breakdown: moved.breakdown,
    failures: moved.report.failures,
  };
}

function print(ctx: CaseContext, r: CaseResult): void {
  ctx.say(`  ${r.app} ${r.sizeMiB} MiB: pause ${r.pauseMs} ms (own stop ${r.ownStopMs} + own start ${r.ownStartMs}; overhead ${r.overheadMs}), failed ${r.failed}, lost ${r.lost} of ${r.acked}, ${(r.bytes / 2 ** 20).toFixed(0)} MiB sent`);
  if (r.breakdown) ctx.say(`    phases (ms): ${describeBreakdown(r.breakdown)}`);
  for (const f of r.failures.slice(0, 5)) ctx.say(`    failed request: ${f.kind}: ${f.message}`);
}

export async function redisCase(ctx: CaseContext, size: number, port: number): Promise<CaseResult[]> {
  const [n1, n2] = ctx.cluster.nodes as [LocalNode, LocalNode];
  const app = `rd${size}`;
  await deployOn(ctx, `rd${size}`, app, redisCompose(app, size, port), n1);
  await healthyOn(ctx, app, n1);
  const via = { host: n1.address, port };
  await ctx.until(`PONG from ${app}`, 60_000, () => redisReady(via));
  ctx.say(`  loading ${size} MiB of keys into ${app} through the client`);
  await loadData(via, { prefix: 'bench:data:', bytes: size << 20 });
  await healthyOn(ctx, app, n1);
  const own = await ownStopStart(n1.dockerHost!, `drover-${app}`, () => redisReady(via), { cold: ctx.coldStart, load: new AckedWriter(() => via, { prefix: 'bench:own:' }) });
  ctx.say(`  ${app} in place on ${n1.name}: own stop ${own.stopMs} ms, own start-to-ready ${own.startMs} ms${own.coldStartMs === null ? '' : `, ${own.coldStartMs} ms with the page cache dropped`}`);
  await healthyOn(ctx, app, n1);
  const w = new AckedWriter(() => via, { prefix: 'bench:write:' });
  const moved = await moveUnderLoad(ctx, app, n1, n2, { start: () => w.start(), stop: () => w.stop(), lost: async () => (await w.verify(via)).lost.length, report: () => w.report() });
  const r = result('redis', size, own, moved);
  print(ctx, r);
  return [r];
}

export async function postgresCase(ctx: CaseContext, size: number, churnMiB: number, port: number): Promise<CaseResult[]> {
  const [n1, n2] = ctx.cluster.nodes as [LocalNode, LocalNode];
  const app = `pg${size}`;
  const project = `pg${size}`;
  const via = { host: n1.address, port };
  await deployOn(ctx, project, app, postgresCompose(app, size, port, false), n1);
  await healthyOn(ctx, app, n1);
  await ctx.until(`${app} answering`, 120_000, () => pgReady(via));
  await prepareTables(via);
  ctx.say(`  loading ${size} MiB of rows into ${app}`);
  await loadRows(via, size);
  const churn = () => loadRows(via, churnMiB);
  await churn();
  const own = await ownStopStart(n1.dockerHost!, `drover-${app}`, () => pgReady(via), { cold: ctx.coldStart, load: new PgAckedWriter(() => via) });
  ctx.say(`  ${app} in place on ${n1.name}: own stop ${own.stopMs} ms, own start-to-ready ${own.startMs} ms`);
  await healthyOn(ctx, app, n1);
  await churn();
  const ownHooked = await ownStopStart(n1.dockerHost!, `drover-${app}`, () => pgReady(via), { hook: CHECKPOINT, cold: ctx.coldStart, load: new PgAckedWriter(() => via) });
  ctx.say(`  ${app} in place, CHECKPOINT first: own stop ${ownHooked.stopMs} ms, own start-to-ready ${ownHooked.startMs} ms`);
  await healthyOn(ctx, app, n1);

  const results: CaseResult[] = [];
  const writer = (): Writer => {
    const w = new PgAckedWriter(() => via);
    return { start: () => w.start(), stop: () => w.stop(), lost: async () => (await w.verify(via)).lost.length, report: () => w.report() };
  };
  await churn();
  const plain = await moveUnderLoad(ctx, app, n1, n2, writer());
  results.push(result('postgres', size, own, plain));
  print(ctx, results.at(-1)!);

  // The same application with the hook: a re-deploy changes no container (and no placement).
  await deployOn(ctx, project, app, postgresCompose(app, size, port, true), n1);
  await healthyOn(ctx, app, n2);
  await systemClock.sleep(3_000); // the agents' view of the new desired state
  await churn();
  const hooked = await moveUnderLoad(ctx, app, n2, n1, writer());
  results.push(result('postgres+before_stop', size, ownHooked, hooked));
  print(ctx, results.at(-1)!);
  return results;
}

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith, LOCAL_CLUSTER } from '../support/require.ts';
import { leaseSubnet } from '../support/cluster.ts';

/**
 * The operator's command line against a real local cluster (docs/DESIGN.md §27), through the
 * real bin/drover.js: `drover move` on a terminal (tmux) shows the current round's bar with
 * correct totals and a line per finished phase; `drover events -f` sees the move as it
 * happens; `drover logs` reads the application's output from the node it runs on now;
 * `drover nodes -o wide`; `drover rm` removes the applications and keeps the data unless
 * `--volumes`.
 */
const repo = join(import.meta.dirname, '../..');
const LONG = 900_000;
const MiB = 1024 * 1024;
const LOAD_MIB = 48;
const dir = mkdtempSync(join(tmpdir(), 'drover-cli-e2e-'));
const CONFIG = join(dir, 'config.yml');
const SESSION = `drover-cli-e2e-${process.pid}`;

describeWith(LOCAL_CLUSTER, 'the drover command line on a local cluster', () => {
  let lease: Awaited<ReturnType<typeof leaseSubnet>>;
  let name = '';
  const drover = (...args: string[]) =>
    execa('node', [join(repo, 'bin/drover.js'), ...args, '--context', name], { cwd: repo, reject: false, timeout: 600_000, env: { DROVER_LOG_LEVEL: 'warn', DROVER_CONFIG: CONFIG } });

  beforeAll(async () => {
    lease = await leaseSubnet();
    name = `t${lease.subnet}`;
    const up = await execa('node', [join(repo, 'bin/drover.js'), 'cluster', 'up', '--name', name, '--subnet', String(lease.subnet), '--nodes', '2', '--images', 'redis'], {
      cwd: repo,
      reject: false,
      timeout: 600_000,
      env: { DROVER_LOG_LEVEL: 'warn', DROVER_CONFIG: CONFIG },
    });
    expect(up.exitCode, up.stderr).toBe(0);
    writeFileSync(join(dir, 'topology.yml'), `version: 1\nnodes:\n  "127.0.${lease.subnet}.11": ["redis"]\n`);
    const deploy = await drover('deploy', join(dir, 'topology.yml'), join(repo, 'examples/redis/docker-compose.yml'));
    expect(deploy.exitCode, deploy.stderr).toBe(0);
  }, LONG);

  afterAll(async () => {
    try {
      execFileSync('tmux', ['kill-session', '-t', SESSION], { stdio: 'ignore' });
    } catch {
      // no session left: the test ended it
    }
    try {
      // zfs-fuse may call a pool busy for a while (another cluster's process that unshared its
      // mount namespace while ours were mounted): tried again, and said when it stays so.
      for (let attempt = 1; name && attempt <= 3; attempt++) {
        const down = await execa('node', [join(repo, 'bin/drover.js'), 'cluster', 'down', '--name', name], { cwd: repo, reject: false, timeout: 300_000, env: { DROVER_CONFIG: CONFIG } });
        if (down.exitCode === 0) break;
        console.warn(`cluster down ${name}, attempt ${attempt}: ${down.stderr}`);
        await new Promise((r) => setTimeout(r, 20_000));
      }
    } finally {
      lease?.release();
      rmSync(dir, { recursive: true, force: true });
    }
  }, LONG);

  it('shows on a terminal the bar of the current round against its own size, then a line per phase and the timeline', async () => {
    await expect.poll(async () => (await drover('status', '--json')).stdout.includes('"health": "healthy"'), { timeout: 300_000, interval: 2_000 }).toBe(true);
    // Incompressible data, so the first round has LOAD_MIB to send.
    const redis = new Redis({ host: `127.0.${lease.subnet}.11`, port: 6379, maxRetriesPerRequest: 20 });
    try {
      for (let i = 0; i < LOAD_MIB; i++) await redis.set(`k${i}`, randomBytes(MiB));
    } finally {
      redis.disconnect();
    }
    const events = drover('events', '-f', '--types', 'migration', '--json');
    const command = `node ${join(repo, 'bin/drover.js')} move redis n2 --context ${name}; echo "EXIT=$?"; sleep 600`;
    execFileSync('tmux', ['new-session', '-d', '-s', SESSION, '-x', '120', '-y', '40', '-e', `DROVER_CONFIG=${CONFIG}`, '-e', 'DROVER_LOG_LEVEL=warn', command]);
    const screens: string[] = [];
    const started = Date.now();
    let screen = '';
    while (Date.now() - started < 600_000) {
      screen = execFileSync('tmux', ['capture-pane', '-p', '-t', SESSION], { encoding: 'utf8' });
      screens.push(screen);
      if (/EXIT=\d+/.test(screen)) break;
      await new Promise((r) => setTimeout(r, 150));
    }
    execFileSync('tmux', ['kill-session', '-t', SESSION]);
    events.kill('SIGTERM');
    const seen = await events;
    console.log(`tmux: ${screens.length} captures over ${Math.round((Date.now() - started) / 1000)} s; the last:\n${screen}`);
    expect(screen).toContain('EXIT=0');
    // Every bar line seen: round N, its bytes never above its own total; round 1's total is the data, later rounds are the delta only.
    const bars = screens.flatMap((s) => [...s.matchAll(/pre-copy  round (\d+)  \[[█░]+\]  ([\d.]+) (B|KiB|MiB|GiB) \/ ([\d.]+) (B|KiB|MiB|GiB)\s+(\d+)%/g)]);
    const toBytes = (n: string, unit: string) => Number(n) * { B: 1, KiB: 1024, MiB: MiB, GiB: 1024 * MiB }[unit as 'B']!;
    const read = bars.map((m) => ({ round: Number(m[1]), sent: toBytes(m[2]!, m[3]!), total: toBytes(m[4]!, m[5]!), percent: Number(m[6]) }));
    console.log('bars seen:', JSON.stringify([...new Map(read.map((r) => [JSON.stringify(r), r])).values()].slice(0, 20)));
    expect(read.length).toBeGreaterThan(0);
    for (const r of read) expect(r.sent).toBeLessThanOrEqual(r.total * 1.01);
    // Round 1's own total holds the data; a later round's is its own (the agent expects the previous
    // delta at most), never the running total of the rounds before plus its own.
    const first = read.filter((r) => r.round === 1);
    expect(Math.max(...first.map((r) => r.total))).toBeGreaterThanOrEqual(LOAD_MIB * MiB * 0.9);
    const firstSent = Math.max(...first.map((r) => r.sent));
    for (const later of read.filter((r) => r.round > 1)) expect(later.total).toBeLessThanOrEqual(firstSent * 1.01);
    expect(screen).toMatch(/✓ pending\s+\S+/);
    // A duration is `850 ms`, `12.3 s` or, on a very loaded machine, `1m05s`.
    const took = String.raw`(\d+(\.\d)? m?s|\d+m\d\ds)`;
    expect(screen).toMatch(new RegExp(String.raw`✓ pre-copy\s+${took}\s+\d+ rounds?, [\d.]+ MiB at [\d.]+ (KiB|MiB)\/s`));
    expect(screen).toMatch(/✓ cutover/);
    expect(screen).toMatch(/moved "redis" to 127\.0\.\d+\.12: \d+ round\(s\), [\d.]+ MiB sent, cutover/);
    expect(screen).toMatch(new RegExp(String.raw`pending ${took} → pre-copy ${took} → cutover .* → done`));
    // drover events -f saw the move as it went: its steps, in order, to done.
    const phases = seen.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; phase: string; application: string; id: number });
    expect(phases.every((p) => p.type === 'migration')).toBe(true);
    const redisPhases = phases.filter((p) => p.application === 'redis').map((p) => p.phase);
    expect(redisPhases).toContain('pre-copy');
    expect(redisPhases.at(-1)).toBe('done');
  }, LONG);

  it('lists the nodes with what runs where, wide and as JSON', async () => {
    const wide = await drover('nodes', '-o', 'wide');
    expect(wide.exitCode, wide.stderr).toBe(0);
    expect(wide.stdout).toMatch(/^NAME\s+ADDRESS\s+UUID\s+STATE\s+APPLICATIONS\s+LAST SEEN\s+LABELS/);
    expect(wide.stdout).toMatch(new RegExp(`n2\\s+127\\.0\\.${lease.subnet}\\.12\\s+[0-9a-f-]{36}\\s+known\\s+redis\\s`));
    const json = JSON.parse((await drover('nodes', '--json')).stdout) as { labels: { name: string }; applications: string[] }[];
    expect(json.map((n) => [n.labels.name, n.applications])).toEqual([
      ['n1', []],
      ['n2', ['redis']],
    ]);
  }, LONG);

  it("shows the application's output from the node it runs on now, its last lines with --tail, and follows it with -f", async () => {
    const all = await drover('logs', 'redis');
    expect(all.exitCode, all.stderr).toBe(0);
    expect(all.stdout).toContain('Ready to accept connections');
    const tail = await drover('logs', 'redis', '--tail', '2', '--json');
    const lines = tail.stdout.trim().split('\n').map((l) => JSON.parse(l) as { stream: string; text: string });
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.stream === 'stdout' || l.stream === 'stderr')).toBe(true);
    // -f keeps the stream open until it is interrupted.
    const follow = drover('logs', 'redis', '-f', '--tail', '1');
    await new Promise((r) => setTimeout(r, 3_000));
    expect(follow.exitCode).toBeNull();
    follow.kill('SIGTERM');
    const ended = await follow;
    expect(String(ended.stdout).trim().split('\n')).toHaveLength(1);
    const none = await drover('logs', 'nosuch');
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain('nosuch');
  }, LONG);

  it('lists the events the control service keeps and exits, and refuses a type it does not know, naming it', async () => {
    const listed = await drover('events', '--types', 'node');
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:]+Z  node\s+n1 \(127\.0\.\d+\.11\) is known$/m);
    const bad = await drover('events', '--types', 'node,bogus');
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--types: no event type "bogus"');
  }, LONG);

  it('removes the project with drover rm but keeps its dataset and data; --volumes deletes them', async () => {
    const missing = await drover('rm', 'nosuch');
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('no project "nosuch"; projects: redis');
    const rm = await drover('rm', 'redis');
    expect(rm.exitCode, rm.stderr).toBe(0);
    expect(rm.stdout).toContain('removed application redis');
    expect(rm.stdout).toMatch(/kept 1 dataset\(s\) of redis with their data \(redis_redis-data\); drover rm redis --volumes deletes them/);
    const after = JSON.parse((await drover('status', '--json')).stdout) as { applications: unknown[]; datasets: { name: string }[] };
    expect(after.applications).toEqual([]);
    expect(after.datasets.map((d) => d.name)).toEqual(['redis_redis-data']);
    const volumes = await drover('rm', 'redis', '--volumes');
    expect(volumes.exitCode, volumes.stderr).toBe(0);
    expect(volumes.stdout).toMatch(/deleted dataset redis_redis-data \([0-9a-f-]{36}\) and its data/);
    expect(JSON.parse((await drover('status', '--json')).stdout).datasets).toEqual([]);
  }, LONG);
});

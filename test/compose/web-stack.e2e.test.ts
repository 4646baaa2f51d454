import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ApiClient } from '#common/api-client.ts';
import { cliEnv, controlClient, startServices, type LocalNode } from '../../local-cluster/index.ts';
import { until } from '../migration/stack.ts';
import { useTestCluster } from '../support/cluster.ts';
import { LOCAL_CLUSTER, describeWith } from '../support/require.ts';

// The Compose issue's one project, as an operator writes it and deploys it with the CLI: a web
// application that finds PostgreSQL as `db` and Redis as `cache` by name, reads its own code and
// settings from Compose configs, checks callers against a secret, and starts only once the
// database is healthy. The database is then moved to the other node with its data while a client
// keeps calling the web application: every call is answered, and no row is lost.
const LONG = 600_000;
const root = resolve(import.meta.dirname, '../..');
const TOKEN = 'k3y-for-the-web-7d1e';
const PORT = 18_080;

// The web application: one process, one request at a time. Each call counts a hit in Redis and
// inserts a row in PostgreSQL, each by service name, and answers with both counts. A database
// call that fails is retried for up to 20 s, as a connection pool would.
const APP = String.raw`use strict; use warnings; use IO::Socket::INET;
my %conf = map { chomp; split /=/, $_, 2 } grep { /=/ } do { open my $f, '<', '/etc/web/web.conf' or die "conf: $!"; <$f> };
my $token = do { open my $f, '<', '/run/secrets/api_token' or die "secret: $!"; local $/; <$f> }; $token =~ s/\s+$//;
sub cache { my $r = IO::Socket::INET->new(PeerAddr => "$conf{cache}:6379", Timeout => 5) or return undef;
  print $r "INCR hits\r\n"; my $line = <$r>; close $r; return defined $line && $line =~ /^:(\d+)/ ? $1 : undef }
sub db { for (1 .. 40) { open my $p, '-|', 'psql', '-h', $conf{db}, '-U', 'postgres', '-tAq', '-v', 'ON_ERROR_STOP=1', '-c',
    'CREATE TABLE IF NOT EXISTS visits (id serial primary key); INSERT INTO visits DEFAULT VALUES; SELECT count(*) FROM visits' or die;
  my $out = do { local $/; <$p> }; close $p; return $1 if $? == 0 && defined $out && $out =~ /(\d+)\s*$/; select undef, undef, undef, 0.5 } return undef }
my $srv = IO::Socket::INET->new(LocalPort => $conf{port}, Listen => 64, ReuseAddr => 1) or die "listen: $!";
$| = 1; print "web listening on $conf{port}\n";
while (my $c = $srv->accept) { my ($auth, $line) = ('');
  while (defined($line = <$c>)) { last if $line =~ /^\r?\n$/; $auth = $1 if $line =~ /^X-Token:\s*(\S+)/i }
  my ($code, $body) = $auth ne $token ? (401, "who are you?\n") : do { my ($h, $v) = (cache(), db());
    defined $h && defined $v ? (200, "hits=$h rows=$v\n") : (503, "cache=" . ($h // '-') . " db=" . ($v // '-') . "\n") };
  print $c "HTTP/1.0 $code X\r\nContent-Type: text/plain\r\nContent-Length: " . length($body) . "\r\n\r\n$body"; close $c }
`;

const COMPOSE = `name: shop
services:
  web:
    image: drover/postgres:latest
    command: ["perl", "/srv/web/app.pl"]
    ports: ["${PORT}:8080"]
    stop_grace_period: 1s
    configs:
      - source: app
        target: /srv/web/app.pl
      - source: settings
        target: /etc/web/web.conf
    secrets:
      - source: token
        target: api_token
    depends_on:
      db: { condition: service_healthy }
      cache: { condition: service_started }
  db:
    image: drover/postgres:latest
    volumes: ["pgdata:/data"]
    healthcheck:
      test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres"]
      interval: 1s
      timeout: 3s
      retries: 3
    x-drover:
      move: { before_stop: { exec: ["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", "CHECKPOINT"], timeout: 30s } }
  cache:
    image: drover/redis:latest
    command: ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data"]
    volumes: ["cachedata:/data"]
configs:
  app: { file: ./web/app.pl }
  settings: { file: ./web/web.conf }
secrets:
  token: { file: ./token.txt }
volumes:
  pgdata:
    driver_opts: { size: 256M }
  cachedata:
    driver_opts: { size: 64M }
`;

interface Answer { code: number; body: string }

/** One call to the web application at `address`, as a client with the token (or `token`). */
function call(address: string, token = TOKEN, timeoutMs = 60_000): Promise<Answer> {
  return new Promise((done, fail) => {
    const req = request({ host: address, port: PORT, path: '/', headers: { 'X-Token': token }, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => done({ code: res.statusCode ?? 0, body }));
      res.on('error', fail);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', fail);
    req.end();
  });
}

const rowsOf = (a: Answer): number => Number(/rows=(\d+)/.exec(a.body)?.[1] ?? NaN);

describeWith(LOCAL_CLUSTER, 'a web application with PostgreSQL and Redis by name, deployed from Compose (2-node local cluster)', () => {
  const cluster = useTestCluster({ nodes: 2, images: ['postgres', 'redis'], poolSizeMiB: 1024 });
  let dir: string;
  let api: ApiClient;
  const node = (i: number): LocalNode => cluster().nodes.find((n) => n.index === i)!;
  const drover = (...args: string[]) =>
    execa('node', [join(root, 'bin/drover.js'), ...args], { cwd: dir, env: { ...cliEnv(cluster()), DROVER_LOG_LEVEL: 'warn' }, reject: false, timeout: 300_000 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-web-stack-e2e-'));
    await startServices(cluster());
    api = controlClient(cluster());
    await mkdir(join(dir, 'web'));
    await writeFile(join(dir, 'compose.yml'), COMPOSE);
    await writeFile(join(dir, 'web', 'app.pl'), APP);
    await writeFile(join(dir, 'web', 'web.conf'), 'port=8080\ndb=db\ncache=cache\n');
    await writeFile(join(dir, 'token.txt'), `${TOKEN}\n`);
    await writeFile(join(dir, 'topology.yml'), `version: 1\nnodes:\n  "${node(1).address}": [web, db, cache]\n  "${node(2).address}": []\n`);
  }, LONG);

  afterAll(async () => {
    if (dir && process.env.DROVER_KEEP_LOGS === undefined) await rm(dir, { recursive: true, force: true });
  });

  it('deploys with the CLI; web, started after db, answers through another node\'s proxy and refuses a caller without the secret', async () => {
    const deployed = await drover('deploy', 'topology.yml', 'compose.yml');
    expect(deployed.stderr).toBe('');
    expect(deployed.exitCode).toBe(0);
    const first = await until('web to answer through node 2', () => call(node(2).address, TOKEN, 10_000).then((a) => a.code === 200 && a, () => null), 300_000, 1_000);
    expect(first.body).toMatch(/^hits=\d+ rows=\d+\n$/);
    // web was started after db had passed its health check, not merely after it started.
    const started = async (name: string) =>
      Date.parse((await execa('docker', ['-H', node(1).dockerHost!, 'inspect', '--format', '{{.State.StartedAt}}', `drover-${name}`])).stdout);
    expect(await started('web')).toBeGreaterThan(await started('db'));
    expect((await call(node(1).address, 'wrong')).code).toBe(401);
  }, LONG);

  /** The host's TCP sockets of the proxies, docker-proxy and postgres, and db's backends: where a stuck call's bytes wait. */
  async function snapshot(at: string): Promise<string> {
    const ss = await execa('ss', ['-tnp'], { reject: false, timeout: 10_000 });
    // The nodes' addresses (127.0.S.x) and their service subnets (10.24i.S.x, docs/DESIGN.md §21).
    const s = cluster().nodes[0]!.address.split('.')[2];
    const mine = new RegExp(`127\\.0\\.${s}\\.|10\\.24\\d\\.${s}\\.`);
    const lines = ss.stdout.split('\n').filter((l) => mine.test(l) || /docker-proxy/.test(l));
    const db = await execa('docker', ['-H', node(2).dockerHost!, 'exec', 'drover-db', 'psql', '-h', '127.0.0.1', '-U', 'postgres', '-tAc', 'select pid, state, backend_type, client_addr, backend_start, wait_event_type, wait_event from pg_stat_activity'], { reject: false, timeout: 10_000 });
    // What web's processes wrote (psql's errors go to the container's stderr), and what runs in it.
    const logs = await execa('docker', ['-H', node(1).dockerHost!, 'logs', '--since', '40s', 'drover-web'], { reject: false, timeout: 10_000 });
    const top = await execa('docker', ['-H', node(1).dockerHost!, 'top', 'drover-web'], { reject: false, timeout: 10_000 });
    return `call started ${at} still running at ${new Date().toISOString()}:\n${lines.join('\n')}\ndb's backends on node 2:\n${db.stdout}${db.stderr}\nweb's output:\n${logs.stdout}\n${logs.stderr.split('\n').slice(-40).join('\n')}\nweb's processes:\n${top.stdout}`;
  }

  it('keeps answering every call while db moves to the other node with its data, and loses no row', async () => {
    const answers: Answer[] = [];
    const failures: string[] = [];
    let longestMs = 0;
    // Calls over 2 s or failed, with their wall-clock start: to read beside the services' logs.
    const slow: string[] = [];
    let calling = true;
    const client = (async () => {
      while (calling) {
        const [began, at] = [performance.now(), new Date().toISOString()];
        // A call still running after 15 s: where its bytes wait (the host's sockets; db's backends), for the report.
        const stuck = setTimeout(() => void snapshot(at).then((text) => slow.push(text)), 15_000);
        try {
          const a = await call(node(2).address).finally(() => clearTimeout(stuck));
          longestMs = Math.max(longestMs, performance.now() - began);
          answers.push(a);
          if (a.code !== 200) failures.push(`${a.code} ${a.body.trim()}`);
          if (a.code !== 200 || performance.now() - began > 2_000) slow.push(`${at} ${Math.round(performance.now() - began)} ms ${a.code} ${a.body.trim()}`);
        } catch (err) {
          failures.push((err as Error).message);
          slow.push(`${at} ${Math.round(performance.now() - began)} ms ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await until('a few calls answered', async () => answers.length >= 5, 60_000, 200);
      console.log(`web stack: moving db at ${new Date().toISOString()}`);
      const moved = await drover('move', 'db', node(2).name, '--timeout', '300');
      console.log(`web stack: db moved at ${new Date().toISOString()}`);
      expect(moved.exitCode, moved.stderr).toBe(0);
      const db = await api.application('db');
      expect(db.node_uuid).toBe(node(2).uuid);
      await until('calls answered after the move', async () => answers.length >= 10 && answers.at(-1)!.code === 200, 60_000, 200);
    } finally {
      calling = false;
      await client;
    }
    if (slow.length > 0) console.log(`web stack: slow or failed calls: ${slow.join('; ')}`);
    expect(failures).toEqual([]);
    // Every call inserted one row: the counts the client saw run on without a gap or a repeat
    // across the move, so the rows written on node 1 arrived on node 2.
    const rows = answers.map(rowsOf);
    for (let i = 1; i < rows.length; i++) expect(rows[i], `call ${i}`).toBe(rows[i - 1]! + 1);
    const web = await api.application('web');
    expect(web.node_uuid).toBe(node(1).uuid);
    console.log(`web stack: ${answers.length} calls during and around the move, 0 failed, rows ${rows[0]}..${rows.at(-1)}, longest call ${Math.round(longestMs)} ms`);
  }, LONG);
});

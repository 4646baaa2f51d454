/**
 * `npm run bench:proxy` — drover's proxy against the direct connection and HAProxy `mode tcp`,
 * on one backend, in one run, interleaved (docs/DESIGN.md §15, proxy/README.md "Benchmark").
 *
 * Backend: HAProxy in `mode http` with one thread, answering by itself (`http-request return`
 * for the 13-byte body, a Lua service for 1 MiB) — a C server, so the backend is not what
 * limits the comparison. Configs: direct, HAProxy `mode tcp` (2 threads), drover user space,
 * drover kernel path (nftables DNAT). Each round runs every scenario on every config, rotating
 * the order; the figure is the median of the rounds. Then a switch under load counts refused
 * or reset connections while the route holds and moves between two backends.
 *
 * `--balance` runs instead the several-instances case (bench/proxy-balance.ts): drover over 3
 * backends against HAProxy `balance leastconn`, and a backend killed mid-run; with
 * `--baseline DIR` another checkout's proxy runs beside it as "before" (on its uv engine, or
 * `--baseline-engine native` for its native relay: a relay change measured against the old one).
 * Flags: --json (only the summary object on stdout), --rounds N (3), --seconds S (4),
 * --scenarios small,big,close (all; a subset leaves the summary's other ratios NaN),
 * --workers N (2: drover's user-space proxy as N processes, or the native relay as N threads, as HAProxy runs 2 threads).
 * Needs root for the kernel path (nft); all traffic stays on 127.0.7.x.
 */
import { nodeFlagsOf } from '#common/node-flags.ts';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execa, type ResultPromise } from 'execa';
import { RouteServer, route } from '../proxy/testing/route-server.ts';
import { nftDeleteScript } from '../proxy/nft-ruleset.ts';
import { switchUnderLoad, waitForPort } from './proxy-clients.ts';
import { balanceCase } from './proxy-balance.ts';

const { values: flags } = parseArgs({ options: { json: { type: 'boolean' }, rounds: { type: 'string' }, seconds: { type: 'string' }, scenarios: { type: 'string' }, workers: { type: 'string' }, balance: { type: 'boolean' }, baseline: { type: 'string' }, 'baseline-engine': { type: 'string' } } });
const ROUNDS = Number(flags.rounds ?? 3);
const SECONDS = Number(flags.seconds ?? 4);
const say = (line: string): void => void (flags.json ? process.stderr : process.stdout).write(`${line}\n`);

const BACKEND = { host: '127.0.7.2', port: 18180 };
const BACKEND_B = { host: '127.0.7.2', port: 18181 };
// The kernel path reaches the same backend processes on a second address of theirs. Every
// other config connects to the backend from 127.0.0.1 to 127.0.7.2; a DNATed client's TCP
// timestamps carry the offset Linux picks for (127.0.0.1, 127.0.7.5) instead, so after a
// direct round the backend's TIME_WAIT sockets for the same client ports reject its SYNs
// (PAWS) and each waits out a 1 s retransmit: a bench artefact, not what kernel-mode clients
// meet (they all come through the node's address). Own backend address, own TIME_WAIT sockets.
const BACKEND_K = { host: '127.0.7.6', port: BACKEND.port };
const BACKEND_BK = { host: '127.0.7.6', port: BACKEND_B.port };
const PORT = 18190;
const PORT_K = 18191;
const HOSTS = { direct: BACKEND.host, haproxy: '127.0.7.3', user: '127.0.7.4', kernel: '127.0.7.5' } as const;
type Config = keyof typeof HOSTS;
const UUIDS = { user: '00000000-0000-4000-8000-0000000000b1', kernel: '00000000-0000-4000-8000-0000000000b2' };
const NAT_TABLE = 'drover_bench_proxy';
// HAProxy runs 2 threads (nbthread 2, one per core); drover's user-space proxy 2 processes.
const WORKERS = Number(flags.workers ?? 2);
const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'drover-bench-proxy-'));
const children: ResultPromise[] = [];

function backendConfig(port: number): string {
  writeFileSync(join(dir, 'big.lua'), `local body = string.rep("x", 1048576)\ncore.register_service("big", "http", function(applet)\n  applet:set_status(200)\n  applet:add_header("content-length", tostring(#body))\n  applet:start_response()\n  applet:send(body)\nend)\n`);
  return `global\n  maxconn 4000\n  nbthread 1\n  lua-load ${join(dir, 'big.lua')}\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  timeout http-keep-alive 60s\nfrontend web\n  bind ${BACKEND.host}:${port}\n  bind ${BACKEND_K.host}:${port}\n  http-request use-service lua.big if { path_beg /big }\n  http-request return status 200 content-type text/plain string "Hello, world!"\n`;
}

const haproxyTcp = `global\n  maxconn 4000\n  nbthread 2\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend fe\n  bind ${HOSTS.haproxy}:${PORT}\n  default_backend be\nbackend be\n  server s1 ${BACKEND.host}:${BACKEND.port}\n`;

function start(file: string, args: string[], env: Record<string, string> = {}): ResultPromise {
  const child = execa(file, args, { reject: false, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } });
  children.push(child);
  return child;
}

function haproxy(name: string, config: string): ResultPromise {
  const file = join(dir, `${name}.cfg`);
  writeFileSync(file, config);
  return start('haproxy', ['-f', file, '-db']);
}

function droverProxy(mode: 'user' | 'kernel', control: string): ResultPromise {
  return start(process.execPath, [...nodeFlagsOf(join(root, 'bin/drover-proxy.js')), join(root, 'bin/drover-proxy.js'), '--control', control, '--node-uuid', UUIDS[mode], '--listen-host', HOSTS[mode], '--mode', mode, '--poll-wait-ms', '5000', ...(mode === 'kernel' ? ['--nat-table', NAT_TABLE] : ['--workers', String(WORKERS)])], {
    DROVER_LOG_LEVEL: 'warn',
  });
}

interface Sample {
  rps: number;
  mibps: number;
  p50: number;
  p99: number;
  errors: number;
  cpuUsPerReq: number | null;
}

function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

function ownTicks(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime, clock ticks (100/s)
  } catch {
    return 0;
  }
}

/** The CPU of a proxy and of its live children (drover's workers), in clock ticks. */
function cpuTicks(pid: number | undefined): number {
  if (pid === undefined) return 0;
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // no children file: count the process alone
  }
  return [pid, ...children].reduce((sum, p) => sum + ownTicks(p), 0);
}

async function wrk(config: Config, scenario: Scenario, pid: number | undefined): Promise<Sample> {
  const port = { direct: BACKEND.port, haproxy: PORT, user: PORT, kernel: PORT_K }[config];
  const url = `http://${HOSTS[config]}:${port}${scenario === 'big' ? '/big' : '/'}`;
  const args = ['-t2', '-c50', `-d${SECONDS}s`, '--latency', ...(scenario === 'close' ? ['-H', 'Connection: close'] : []), url];
  const before = cpuTicks(pid);
  const { stdout } = await execa('wrk', args, { reject: false });
  const ticks = cpuTicks(pid) - before;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0);
  const transfer = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(stdout);
  const unit = { B: 1 / 1048576, KB: 1 / 1024, MB: 1, GB: 1024 }[(transfer?.[2] ?? 'MB') as 'B' | 'KB' | 'MB' | 'GB'];
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return {
    rps,
    mibps: Number(transfer?.[1] ?? 0) * unit,
    p50: ms(/\s50%\s+(\S+)/.exec(stdout)?.[1] ?? ''),
    p99: ms(/\s99%\s+(\S+)/.exec(stdout)?.[1] ?? ''),
    errors: errs ? errs.slice(1).reduce((n, x) => n + Number(x), 0) : 0,
    cpuUsPerReq: pid === undefined || requests === 0 ? null : (ticks * 10_000) / requests,
  };
}

type Scenario = 'small' | 'big' | 'close';
const ALL_SCENARIOS: Scenario[] = ['small', 'big', 'close'];
// `--scenarios close` runs a subset (for profiling one path); the summary needs all three.
const SCENARIOS: Scenario[] = flags.scenarios === undefined ? ALL_SCENARIOS : (flags.scenarios.split(',') as Scenario[]);
for (const s of SCENARIOS) if (!ALL_SCENARIOS.includes(s)) throw new Error(`--scenarios: ${s} is not one of ${ALL_SCENARIOS.join(', ')}`);
const CONFIGS: Config[] = ['direct', 'haproxy', 'user', 'kernel'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const routes = new RouteServer();
  let kernel = true;
  try {
    await execa('nft', ['-f', '-'], { input: nftDeleteScript(NAT_TABLE) });
  } catch {
    kernel = false;
    say('nft is not usable here (needs root and Debian nftables): the kernel path is skipped');
  }
  haproxy('backend', backendConfig(BACKEND.port));
  haproxy('backend-b', backendConfig(BACKEND_B.port));
  const hap = haproxy('haproxy-tcp', haproxyTcp);
  await routes.start();
  routes.publish([route('bench', PORT, BACKEND), route('bench-kernel', PORT_K, BACKEND_K)]);
  const user = droverProxy('user', routes.url);
  const kern = kernel ? droverProxy('kernel', routes.url) : null;
  await Promise.all([
    waitForPort(BACKEND.host, BACKEND.port),
    waitForPort(BACKEND_B.host, BACKEND_B.port),
    waitForPort(HOSTS.haproxy, PORT),
    waitForPort(HOSTS.user, PORT),
    ...(kernel ? [waitForPort(HOSTS.kernel, PORT_K), waitForPort(BACKEND_K.host, BACKEND_K.port)] : []),
  ]);
  await routes.waitForAck(UUIDS.user, 1, 30_000);
  if (kernel) await routes.waitForAck(UUIDS.kernel, 1, 30_000);

  const configs = CONFIGS.filter((c) => kernel || c !== 'kernel');
  const pids: Record<Config, number | undefined> = { direct: undefined, haproxy: hap.pid, user: user.pid, kernel: kern?.pid };
  const samples = new Map<string, Sample[]>();
  say(`bench:proxy — ${ROUNDS} rounds × ${SCENARIOS.length} scenarios × ${configs.length} configs, wrk -t2 -c50 -d${SECONDS}s`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const scenario of SCENARIOS) {
      for (let i = 0; i < configs.length; i++) {
        const config = configs[(i + round) % configs.length]!;
        const s = await wrk(config, scenario, pids[config]);
        const key = `${scenario}/${config}`;
        samples.set(key, [...(samples.get(key) ?? []), s]);
      }
    }
    say(`  round ${round + 1} done`);
  }
  const med = (scenario: Scenario, config: Config, f: keyof Sample): number => median((samples.get(`${scenario}/${config}`) ?? []).map((s) => s[f] ?? NaN));

  say('');
  say('scenario  config    req/s       MiB/s    p50 ms  p99 ms  errors  proxy CPU µs/req');
  for (const scenario of SCENARIOS) {
    for (const config of configs) {
      const cpu = med(scenario, config, 'cpuUsPerReq');
      say(
        `${scenario.padEnd(9)} ${config.padEnd(8)} ${med(scenario, config, 'rps').toFixed(0).padStart(8)} ${med(scenario, config, 'mibps').toFixed(1).padStart(10)} ${med(scenario, config, 'p50').toFixed(2).padStart(8)} ${med(scenario, config, 'p99').toFixed(2).padStart(7)} ${String(med(scenario, config, 'errors')).padStart(7)}  ${Number.isNaN(cpu) ? '–' : cpu.toFixed(1)}`,
      );
    }
  }

  const userSwitch = await switchUnderLoad(routes, { host: HOSTS.user, port: PORT, nodeUuid: UUIDS.user, a: BACKEND, b: BACKEND_B });
  const kernelSwitch = kernel ? await switchUnderLoad(routes, { app: 'bench-kernel', host: HOSTS.kernel, port: PORT_K, nodeUuid: UUIDS.kernel, a: BACKEND_K, b: BACKEND_BK }) : null;
  say('');
  for (const [name, s] of [['user', userSwitch], ['kernel', kernelSwitch]] as const) {
    if (s) say(`switch under load (${name}): ${s.completed} requests completed, ${s.refused} refused, ${s.reset} reset, ${s.other} other errors; longest request ${s.longestMs.toFixed(0)} ms; route change acknowledged within ${s.slowestAckMs.toFixed(0)} ms`);
  }

  const summary = {
    haproxyRps: Math.round(med('small', 'haproxy', 'rps')),
    droverRps: Math.round(med('small', 'user', 'rps')),
    rpsRatio: round3(med('small', 'user', 'rps') / med('small', 'haproxy', 'rps')),
    newConnRatio: round3(med('close', 'user', 'rps') / med('close', 'haproxy', 'rps')),
    p99Ratio: round3(med('small', 'user', 'p99') / med('small', 'haproxy', 'p99')),
    kernelRpsVsDirect: kernel ? round3(med('small', 'kernel', 'rps') / med('small', 'direct', 'rps')) : null,
    refusedDuringSwitch: userSwitch.refused + userSwitch.reset + (kernelSwitch ? kernelSwitch.refused + kernelSwitch.reset : 0),
  };
  say('');
  say(`ratios: drover/HAProxy req/s ${summary.rpsRatio}, new conn/s ${summary.newConnRatio}, p99 ${summary.p99Ratio}; 1 MiB MiB/s ${round3(med('big', 'user', 'mibps') / med('big', 'haproxy', 'mibps'))}; kernel/direct req/s ${summary.kernelRpsVsDirect ?? '–'}`);
  if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  await routes.stop();
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function cleanup(): Promise<void> {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => c.catch(() => {})));
  await execa('nft', ['-f', '-'], { input: nftDeleteScript(NAT_TABLE), reject: false });
  rmSync(dir, { recursive: true, force: true });
}

try {
  if (flags.balance) {
    const summary = await balanceCase({
      dir,
      seconds: SECONDS,
      rounds: ROUNDS,
      workers: WORKERS,
      say,
      start,
      baseline: flags.baseline === undefined ? undefined : resolve(flags.baseline),
      baselineEngine: flags['baseline-engine'],
      droverProxyArgs: (control, uuid, host, tree = root, engine) => {
        const bin = join(tree, 'bin/drover-proxy.js');
        return [process.execPath, [...nodeFlagsOf(bin), bin, '--control', control, '--node-uuid', uuid, '--listen-host', host, '--mode', 'user', '--poll-wait-ms', '5000', '--workers', String(WORKERS), ...(engine === undefined ? [] : ['--engine', engine])]];
      },
    });
    if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else await main();
} finally {
  await cleanup();
}

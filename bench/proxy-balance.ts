/**
 * `npm run bench:proxy -- --balance` — drover's proxy balancing one port over 3 instances
 * (docs/DESIGN.md §30) against HAProxy `balance leastconn` over the same 3 backends, in one
 * run, interleaved: req/s and p99 on kept-alive and on new connections, then failed requests
 * while one backend is killed mid-run.
 *
 * Backends: 3 HAProxy `mode http` processes answering by themselves (one thread each). HAProxy
 * (the anchor) has health checks every 500 ms (`fall 1`), `retries 3` and `option redispatch`,
 * so a connect refused by a dead backend is retried on another. drover's route lists the 3
 * backends and keeps listing the dead one (the control service would drop it one report
 * later): what saves the clients is the proxy's own skip of a target whose connect failed.
 * Both run 2 threads/processes. All traffic stays on 127.0.7.x.
 *
 * "drover" is the proxy with `--engine uv` (2 processes), "native" the same proxy with
 * `--engine native` (the C relay, docs/DESIGN.md §32, its `--workers` as relay threads), in the
 * same rounds. Each round's p99 per front and the per-round ratios to HAProxy's are printed
 * beside the medians: the kept-alive tail moves with the machine from one sample to the next.
 *
 * `--baseline DIR` adds another front, "before": the drover proxy of another checkout (e.g.
 * `git worktree add /tmp/base main`, with `node_modules` linked), on the same 3 backends in the
 * same rounds, to tell a change from the machine (`--baseline-engine native`: its native relay). Each front's CPU per request (the process
 * and its workers, from /proc) is printed beside its rate.
 */
import { execa, type ResultPromise } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Route } from '#common/channel.ts';
import { RouteServer } from '../proxy/testing/route-server.ts';
import { waitForPort } from './proxy-clients.ts';

export const BACKEND_HOST = '127.0.7.2';
export const PORTS = [18182, 18183, 18184];
export const FRONT = { haproxy: '127.0.7.3', drover: '127.0.7.4', before: '127.0.7.5', native: '127.0.7.6' } as const;
type Front = keyof typeof FRONT;
export const PORT = 18192;
const UUID = '00000000-0000-4000-8000-0000000000b3';
const BEFORE_UUID = '00000000-0000-4000-8000-0000000000b4';
const NATIVE_UUID = '00000000-0000-4000-8000-0000000000b5';
const UUIDS: Record<Front, string> = { haproxy: '', drover: UUID, before: BEFORE_UUID, native: NATIVE_UUID };

export interface BalanceDeps {
  dir: string;
  seconds: number;
  rounds: number;
  workers: number;
  say: (line: string) => void;
  /** Starts a long-running child the caller stops at the end. */
  start: (file: string, args: string[], env?: Record<string, string>) => ResultPromise;
  droverProxyArgs: (control: string, uuid: string, host: string, tree?: string, engine?: string) => [string, string[]];
  /** Another checkout whose proxy runs as the "before" front. */
  baseline?: string;
  /** The "before" front's engine (its proxy's default when unset). */
  baselineEngine?: string;
}

export const backend = (port: number) => `global\n  maxconn 4000\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend web\n  bind ${BACKEND_HOST}:${port}\n  http-request return status 200 content-type text/plain string "Hello, world!"\n`;
export const leastconn = `global\n  maxconn 4000\n  nbthread 2\ndefaults\n  mode tcp\n  retries 3\n  option redispatch\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\nfrontend fe\n  bind ${FRONT.haproxy}:${PORT}\n  default_backend be\nbackend be\n  balance leastconn\n${PORTS.map((p, i) => `  server s${i + 1} ${BACKEND_HOST}:${p} check inter 500 fall 1 rise 1\n`).join('')}`;

interface Sample {
  rps: number;
  p99: number;
  errors: number;
  non2xx: number;
  cpuUs: number;
}

/** utime + stime of a process and its children (drover's workers), in clock ticks (100/s). */
function cpuTicks(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const ticks = (p: string) => {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(f[11]) + Number(f[12]);
    } catch {
      return 0;
    }
  };
  let kids: string[] = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    // none
  }
  return [String(pid), ...kids].reduce((n, p) => n + ticks(p), 0);
}

async function wrk(host: string, seconds: number, close: boolean, pid?: number): Promise<Sample> {
  const args = ['-t2', '-c50', `-d${seconds}s`, '--latency', ...(close ? ['-H', 'Connection: close'] : []), `http://${host}:${PORT}/`];
  const before = cpuTicks(pid);
  const { stdout } = await execa('wrk', args, { reject: false });
  const ticks = cpuTicks(pid) - before;
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(stdout);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0),
    p99: p99 ? Number(p99[1]) * (p99[2] === 'us' ? 0.001 : p99[2] === 's' ? 1000 : 1) : NaN,
    errors: errs ? errs.slice(1).reduce((n, x) => n + Number(x), 0) : 0,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0),
    cpuUs: requests > 0 ? (ticks * 10_000) / requests : NaN,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function balanceCase(deps: BalanceDeps): Promise<Record<string, number>> {
  const backends = PORTS.map((p, i) => {
    writeFileSync(join(deps.dir, `b${i}.cfg`), backend(p));
    return deps.start('haproxy', ['-f', join(deps.dir, `b${i}.cfg`), '-db']);
  });
  writeFileSync(join(deps.dir, 'leastconn.cfg'), leastconn);
  const pids: Partial<Record<Front, number>> = { haproxy: deps.start('haproxy', ['-f', join(deps.dir, 'leastconn.cfg'), '-db']).pid };
  const routes = new RouteServer();
  await routes.start();
  const targets = PORTS.map((port) => ({ host: BACKEND_HOST, port, node_uuid: UUID }));
  const table: Route[] = [{ application: 'bench-balance', external_port: PORT, target: targets[0]!, targets, hold: false, generation: 0 }];
  routes.publish(table);
  const fronts: Front[] = deps.baseline === undefined ? ['haproxy', 'drover', 'native'] : ['haproxy', 'drover', 'native', 'before'];
  for (const who of fronts.slice(1)) {
    // "drover" names its engine: `auto` has been the native relay since session 8, which made this front a second relay under the uv engine's name.
    const [file, args] = deps.droverProxyArgs(routes.url, UUIDS[who], FRONT[who], who === 'before' ? deps.baseline : undefined, who === 'native' ? 'native' : who === 'before' ? deps.baselineEngine : 'uv');
    pids[who] = deps.start(file, args, { DROVER_LOG_LEVEL: 'warn' }).pid;
  }
  await Promise.all([...PORTS.map((p) => waitForPort(BACKEND_HOST, p)), ...fronts.map((who) => waitForPort(FRONT[who], PORT))]);
  await routes.waitForAck(UUID, 1, 30_000);
  await routes.waitForAck(NATIVE_UUID, 1, 30_000);
  if (deps.baseline !== undefined) await routes.waitForAck(BEFORE_UUID, 1, 30_000);
  await new Promise((r) => setTimeout(r, 1_000)); // HAProxy's first health checks

  const samples: Record<string, Sample[]> = {};
  deps.say(`bench:proxy --balance — ${deps.rounds} rounds, 3 backends, wrk -t2 -c50 -d${deps.seconds}s`);
  for (let round = 0; round < deps.rounds; round++) {
    for (const close of [false, true]) {
      const order = fronts.map((_, i) => fronts[(i + round) % fronts.length]!);
      for (const who of order) (samples[`${who}/${close ? 'close' : 'keep'}`] ??= []).push(await wrk(FRONT[who], deps.seconds, close, pids[who]));
    }
  }
  const med = (key: string, f: keyof Sample) => median((samples[key] ?? []).map((s) => s[f]));
  deps.say('');
  deps.say('connections  config    req/s    p99 ms  errors  CPU µs/req');
  for (const mode of ['keep', 'close']) {
    for (const who of fronts) deps.say(`${mode.padEnd(12)} ${who.padEnd(8)} ${med(`${who}/${mode}`, 'rps').toFixed(0).padStart(8)} ${med(`${who}/${mode}`, 'p99').toFixed(2).padStart(8)} ${String(med(`${who}/${mode}`, 'errors') + med(`${who}/${mode}`, 'non2xx')).padStart(7)} ${med(`${who}/${mode}`, 'cpuUs').toFixed(1).padStart(10)}`);
  }

  // The tail moves with the machine from one sample to the next (docs/DESIGN.md §32, session 9):
  // each round's p99 per front, and the median of the per-round ratios to HAProxy's (samples of
  // one round run back to back), beside the ratio of medians.
  for (const mode of ['keep', 'close']) {
    for (const who of fronts.slice(1)) {
      const mine = (samples[`${who}/${mode}`] ?? []).map((s) => s.p99);
      const theirs = (samples[`haproxy/${mode}`] ?? []).map((s) => s.p99);
      const ratios = mine.map((p, i) => p / theirs[i]!);
      deps.say(`p99 per round, ${mode} ${who}: ${mine.map((p) => p.toFixed(1)).join(' ')} ms (HAProxy ${theirs.map((p) => p.toFixed(1)).join(' ')}); per-round ratio ${ratios.map((r) => r.toFixed(2)).join(' ')}, median ${median(ratios).toFixed(2)}`);
    }
  }

  // One backend killed a third into a run on new connections, for each front in turn; it is started again between.
  const killed: Record<string, Sample> = {};
  for (const who of fronts) {
    const run = wrk(FRONT[who], deps.seconds * 2, true);
    await new Promise((r) => setTimeout(r, (deps.seconds * 2000) / 3));
    backends[1]!.kill('SIGKILL');
    killed[who] = await run;
    await backends[1]!.catch(() => {});
    backends[1] = deps.start('haproxy', ['-f', join(deps.dir, 'b1.cfg'), '-db']);
    await waitForPort(BACKEND_HOST, PORTS[1]!);
    await new Promise((r) => setTimeout(r, 1_500)); // back in both rotations (health check; drover's 2 s skip)
  }
  deps.say('');
  for (const who of fronts) deps.say(`one backend killed mid-run (${who}): ${killed[who]!.rps.toFixed(0)} req/s, ${killed[who]!.errors} socket errors, ${killed[who]!.non2xx} non-2xx`);
  await routes.stop();
  const summary = {
    keepRpsRatio: med('drover/keep', 'rps') / med('haproxy/keep', 'rps'),
    keepP99Ratio: med('drover/keep', 'p99') / med('haproxy/keep', 'p99'),
    closeRpsRatio: med('drover/close', 'rps') / med('haproxy/close', 'rps'),
    closeP99Ratio: med('drover/close', 'p99') / med('haproxy/close', 'p99'),
    haproxyFailedOnKill: killed.haproxy!.errors + killed.haproxy!.non2xx,
    droverFailedOnKill: killed.drover!.errors + killed.drover!.non2xx,
    nativeKeepRpsRatio: med('native/keep', 'rps') / med('haproxy/keep', 'rps'),
    nativeKeepP99Ratio: med('native/keep', 'p99') / med('haproxy/keep', 'p99'),
    nativeCloseRpsRatio: med('native/close', 'rps') / med('haproxy/close', 'rps'),
    nativeCloseP99Ratio: med('native/close', 'p99') / med('haproxy/close', 'p99'),
    nativeFailedOnKill: killed.native!.errors + killed.native!.non2xx,
    ...(deps.baseline === undefined
      ? {}
      : {
          beforeKeepRpsRatio: med('before/keep', 'rps') / med('haproxy/keep', 'rps'),
          beforeKeepP99Ratio: med('before/keep', 'p99') / med('haproxy/keep', 'p99'),
          beforeCloseRpsRatio: med('before/close', 'rps') / med('haproxy/close', 'rps'),
          beforeCloseP99Ratio: med('before/close', 'p99') / med('haproxy/close', 'p99'),
          beforeFailedOnKill: killed.before!.errors + killed.before!.non2xx,
        }),
  };
  deps.say('');
  deps.say(`ratios drover/HAProxy leastconn: kept-alive req/s ${summary.keepRpsRatio.toFixed(3)}, p99 ${summary.keepP99Ratio.toFixed(3)}; new connections req/s ${summary.closeRpsRatio.toFixed(3)}, p99 ${summary.closeP99Ratio.toFixed(3)}`);
  deps.say(`ratios native/HAProxy leastconn: kept-alive req/s ${summary.nativeKeepRpsRatio.toFixed(3)}, p99 ${summary.nativeKeepP99Ratio.toFixed(3)}; new connections req/s ${summary.nativeCloseRpsRatio.toFixed(3)}, p99 ${summary.nativeCloseP99Ratio.toFixed(3)}`);
  if (deps.baseline !== undefined) deps.say(`before (${deps.baseline}, ${deps.baselineEngine ?? 'default engine'}) /HAProxy: kept-alive req/s ${summary.beforeKeepRpsRatio!.toFixed(3)}, p99 ${summary.beforeKeepP99Ratio!.toFixed(3)}; new connections req/s ${summary.beforeCloseRpsRatio!.toFixed(3)}, p99 ${summary.beforeCloseP99Ratio!.toFixed(3)}`);
  return summary;
}

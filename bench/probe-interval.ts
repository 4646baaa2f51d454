/**
 * `npx tsx bench/probe-interval.ts [--starts 20] [--docker-host unix:///var/run/docker.sock]`
 *
 * How much of a starting application's readiness the health check's start interval hides
 * (docs/DESIGN.md §39). A Redis container is started `--starts` times; at each start two
 * probe loops run side by side against the same published port, as the agent's health monitor
 * runs them (probes.ts `tcpProbe` with `send: PING`, `expect: +PONG`; the extra probes'
 * interval from probe-state.ts `nextProbe`): one with an exec check's interval (50 ms, the
 * interval every check had before), one with a tcp check's (10 ms). Both see the same start,
 * so the difference of their first successes is what the shorter interval saves, whatever the
 * machine's load does to the start itself. As behind drover's gate, the container's network and
 * port proxy are up first and Redis starts 0.3–0.6 s later inside it (at random). Prints each loop's first
 * success after `docker start` returned, and the difference: median, p90, max.
 *
 * Uses the given dockerd and the local `drover/redis` image; each start's container is removed.
 */
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { systemClock } from '#common/clock.ts';
import type { HealthCheck } from '#common/model.ts';
import { tcpProbe } from '../convergence-agent/health/probes.ts';
import { initialProbeState, nextProbe } from '../convergence-agent/health/probe-state.ts';

const { values: flags } = parseArgs({
  options: {
    starts: { type: 'string', default: '20' },
    'docker-host': { type: 'string', default: 'unix:///var/run/docker.sock' },
    port: { type: 'string', default: '16379' },
  },
});
const starts = Number(flags.starts);
const port = Number(flags.port);
if (!Number.isInteger(starts) || starts < 1 || starts > 200) throw new Error('--starts: 1..200');
if (!Number.isInteger(port) || port < 1024 || port > 65535) throw new Error('--port: 1024..65535');
const name = `drover-bench-probe-${process.pid}`;
const docker = (...args: string[]) => execa('docker', ['-H', flags['docker-host'], ...args], { timeout: 60_000 });

/** Probes until the first success, with the start interval of a check of `type`; ms since `t0`. */
async function firstSuccess(type: HealthCheck['type'], t0: number, signal: AbortSignal): Promise<number> {
  const due = Number.MAX_SAFE_INTEGER; // no regular probe within a start: only the extra ones
  while (!signal.aborted) {
    const result = await tcpProbe('127.0.0.1', port, 2_000, { send: 'PING\r\n', expect: '+PONG' });
    if (result.outcome === 'success') return performance.now() - t0;
    const now = Date.now();
    const next = nextProbe(initialProbeState, due, now, now - 1, { type });
    await systemClock.sleep(next.at - now, signal);
  }
  return Number.NaN;
}

function stats(values: number[]): string {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))]!;
  return `mean ${(s.reduce((a, b) => a + b, 0) / s.length).toFixed(1)} · median ${at(0.5).toFixed(1)} · p90 ${at(0.9).toFixed(1)} · max ${s.at(-1)!.toFixed(1)}`;
}

async function main(): Promise<void> {
  const slow: number[] = [];
  const fast: number[] = [];
  try {
    for (let i = 0; i < starts; i++) {
      // As behind drover's gate: the container (its network, the port proxy) is up first, and
      // the application starts a moment later in it — a random moment, so that it falls
      // anywhere between two probes of either loop (a fixed one fell on the 50 ms loop's grid).
      const delay = (0.3 + Math.random() * 0.3).toFixed(3);
      await docker('create', '--name', name, '-p', `127.0.0.1:${port}:6379`, 'drover/redis:latest', 'sh', '-c', `sleep ${delay}; exec redis-server --bind 0.0.0.0 --protected-mode no --save '' --appendonly no`);
      const abort = new AbortController();
      const bound = setTimeout(() => abort.abort(), 30_000);
      await docker('start', name);
      // Both loops start at once, before the application listens (the agent probes from the gate's opening).
      const t0 = performance.now();
      const [a, b] = await Promise.all([firstSuccess('exec', t0, abort.signal), firstSuccess('tcp', t0, abort.signal)]);
      clearTimeout(bound);
      slow.push(a);
      fast.push(b);
      process.stderr.write(`  start ${i + 1}: ready seen at ${a.toFixed(1)} ms (50 ms interval), ${b.toFixed(1)} ms (10 ms interval)\n`);
      await docker('rm', '-f', name);
    }
  } finally {
    await docker('rm', '-f', name).catch(() => undefined);
  }
  const saved = slow.map((s, i) => s - fast[i]!);
  process.stdout.write(`${starts} starts of drover/redis, first passing probe after \`docker start\` returned (Redis starts 0.3–0.6 s after it, at random), ms:\n`);
  process.stdout.write(`  50 ms interval (exec's; every check's before): ${stats(slow)}\n`);
  process.stdout.write(`  10 ms interval (tcp and http now):            ${stats(fast)}\n`);
  process.stdout.write(`  saved per start (same start, both loops):     ${stats(saved)}\n`);
}

await main();

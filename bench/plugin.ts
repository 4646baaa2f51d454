/**
 * Benchmark of the volume plugin (docs/DESIGN.md §15): `docker run --rm -v vol:/data … true` with a
 * drover volume already on this node against the same with Docker's local driver, on a
 * 1-node local cluster with the real control service, agent and plugin. Runs interleave
 * (alternating which goes first) so both see the same machine. Target: ≤ 1.5× local.
 *
 *   npm run bench:plugin [-- --runs 20] [-- --json]     # --json: {"localMs","droverMs","ratio"}
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { silentLogger } from '#common/log.ts';
import { clusterDown, clusterUp, type LocalCluster } from '../local-cluster/index.ts';
import { leaseSubnet } from '../test/support/cluster.ts';
import { DroverStack } from '../test/volume-driver/stack.ts';

const IMAGE = 'drover/busybox:latest';
const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' }, json: { type: 'boolean', default: false } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new Error('--runs must be an integer from 1 to 1000');
const say = (line: string) => process.stderr.write(`${line}\n`);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** From the plugin's debug log: each Docker call's count per run and median answer time. */
function callTimes(log: string, runs: number): Array<{ call: string; perRun: number; medianMs: number }> {
  const byCall = new Map<string, number[]>();
  for (const line of log.split('\n')) {
    if (!line.includes('"call answered"')) continue;
    const { call, ms } = JSON.parse(line) as { call: string; ms: number };
    byCall.set(call, [...(byCall.get(call) ?? []), ms]);
  }
  return [...byCall].map(([call, ms]) => ({ call, perRun: ms.length / runs, medianMs: median(ms) }));
}

async function main(): Promise<void> {
  const lease = await leaseSubnet();
  const name = `b${lease.subnet}`;
  const dir = await mkdtemp(join(tmpdir(), 'drover-bench-plugin-'));
  let cluster: LocalCluster | null = null;
  let stack: DroverStack | null = null;
  let docker: (...args: string[]) => Promise<string> = async () => '';
  const teardown = async () => {
    // Volumes before the plugin, the plugin (its socket) before the dockerd.
    await docker('volume', 'rm', '-f', 'bench-drover', 'bench-local').catch(() => undefined);
    await stack?.stop().catch((err: unknown) => say(`stopping drover: ${String(err)}`));
    await clusterDown(name, undefined, silentLogger()).catch((err: unknown) => say(`cluster down: ${String(err)}`));
    lease.release();
    await rm(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void teardown().then(() => process.exit(130)));
  try {
    say(`local cluster ${name}: 1 node …`);
    cluster = await clusterUp({ name, nodes: 1, subnet: lease.subnet, docker: true, ssh: false, images: ['busybox'], log: silentLogger() });
    const node = cluster.nodes[0]!;
    docker = async (...args: string[]) => (await execa('docker', ['-H', node.dockerHost!, ...args], { timeout: 180_000 })).stdout.trim();
    stack = await DroverStack.start(cluster, dir, { logLevel: 'warn', pluginLogLevel: 'debug' });

    await docker('volume', 'create', '-d', node.pluginName, 'bench-drover');
    await docker('volume', 'create', 'bench-local');
    const run = async (volume: string): Promise<number> => {
      const started = performance.now();
      await docker('run', '--rm', '-v', `${volume}:/data`, IMAGE, 'true');
      return performance.now() - started;
    };
    say('warming up (the first drover Mount waits for the agent to create the dataset) …');
    await run('bench-drover');
    await run('bench-local');

    const logStart = (await readFile(stack.logFile(`plugin-${node.name}`), 'utf8')).length;
    const local: number[] = [];
    const drover: number[] = [];
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) {
        drover.push(await run('bench-drover'));
        local.push(await run('bench-local'));
      } else {
        local.push(await run('bench-local'));
        drover.push(await run('bench-drover'));
      }
      say(`run ${i + 1}/${runs}: local ${local.at(-1)!.toFixed(0)} ms, drover ${drover.at(-1)!.toFixed(0)} ms`);
    }
    const localMs = Math.round(median(local) * 10) / 10;
    const droverMs = Math.round(median(drover) * 10) / 10;
    const ratio = Math.round((droverMs / localMs) * 1000) / 1000;
    const calls = callTimes((await readFile(stack.logFile(`plugin-${node.name}`), 'utf8')).slice(logStart), runs);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ localMs, droverMs, ratio })}\n`);
    } else {
      process.stdout.write(
        [
          `docker run --rm -v vol:/data ${IMAGE} true   (${runs} runs each, interleaved, median)`,
          `  local driver   ${localMs.toFixed(1)} ms`,
          `  drover driver  ${droverMs.toFixed(1)} ms   (volume already on this node)`,
          `  ratio          ${ratio.toFixed(3)}×   (target ≤ 1.5×)`,
          'time inside the plugin, per drover run (calls × median ms):',
          ...calls.map((c) => `  ${c.call.padEnd(27)} ${c.perRun.toFixed(1)} × ${c.medianMs.toFixed(1)} ms`),
          '',
        ].join('\n'),
      );
    }
  } finally {
    await teardown();
  }
}

main().catch((err: unknown) => {
  say(`bench:plugin failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

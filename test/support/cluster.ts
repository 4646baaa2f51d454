import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, type RunnerTask, type RunnerTestSuite } from 'vitest';
import { createLogger, silentLogger } from '#common/log.ts';
import { claimedSubnets, clusterDown, clusterUp, type LocalCluster, type LocalClusterOptions } from '../../local-cluster/index.ts';
import { BACKGROUND_DOWNS, downInBackground } from './background-down.ts';
import { failedLogsDir, keepClusterLogs } from './keep-logs.ts';

/**
 * A local cluster for one test file: up in `beforeAll`, down in `afterAll` (in the
 * integration tier, in the background while the next file sets up: background-down.ts).
 *
 *   const cluster = useTestCluster({ nodes: 3 });
 *   it('…', () => { const n2 = cluster().nodes[1]!; … });
 *
 * Several test runs share this machine (and the demo cluster on subnet 0), so each file
 * leases a free subnet s ≥ 1 and names its cluster `t<s>`: addresses 127.0.s.(10+i) and
 * every pool, bridge and socket are its own. The lease is a kernel lock (flock) on
 * `/run/drover/test-leases/<s>`, held by a small child process for as long as this process
 * lives: it cannot be taken twice, and it frees itself when its owner dies. The next owner
 * of a subnet then finds the crashed cluster of the same name, which `clusterUp` cleans
 * (`fresh: true`: a leased name is this file's alone, so whatever has it is a leftover;
 * without it `clusterUp` would repair the crashed cluster and keep its data).
 *
 * When a test of the file failed (or with DROVER_KEEP_LOGS set) the cluster's `*.log` files
 * are copied before it goes down, to $DROVER_TEST_LOGS (default /tmp/drover-test-logs)/<file>-<time>/.
 */
const LEASES = '/run/drover/test-leases';
const SUBNETS = 40;

/** A live pid other than ours written in the lease file: someone keeps the subnet by hand. */
function reservedByHand(file: string): boolean {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return false;
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Holds an exclusive flock on `file` in a child that lives until its stdin closes; null when busy. */
function tryLock(file: string): Promise<ChildProcess | null> {
  return new Promise((resolve) => {
    // The shell line is constant: it reports the lock, then waits for end of input.
    const child = spawn('flock', ['-n', '-E', '99', file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    let settled = false;
    const settle = (value: ChildProcess | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(value);
    };
    const timer = setTimeout(() => {
      child.kill();
      settle(null);
    }, 10_000);
    child.stdout!.once('data', () => settle(child));
    child.once('exit', () => settle(null));
    child.once('error', () => settle(null));
  });
}

/**
 * Leases the lowest free subnet (unlocked, not kept by hand, no other local cluster on
 * it); returns it and a release function.
 */
export async function leaseSubnet(): Promise<{ subnet: number; file: string; release: (keptBy?: number) => void }> {
  mkdirSync(LEASES, { recursive: true });
  const claims = await claimedSubnets();
  for (let subnet = 1; subnet <= SUBNETS; subnet++) {
    if (claims.some((claim) => claim.subnet === subnet && claim.name !== `t${subnet}`)) continue;
    const file = join(LEASES, String(subnet));
    if (reservedByHand(file)) continue;
    const holder = await tryLock(file);
    if (holder === null) continue;
    if (reservedByHand(file)) {
      holder.stdin!.end();
      continue;
    }
    writeFileSync(file, `${process.pid}\n`);
    holder.stdout!.destroy();
    (holder.stdin as unknown as { unref(): void }).unref();
    holder.unref();
    return {
      subnet,
      file,
      // keptBy: the pid that keeps the subnet from now on (a teardown that takes the lock next).
      release: (keptBy?: number) => {
        writeFileSync(file, keptBy === undefined ? '' : `${keptBy}\n`);
        holder.stdin!.end();
      },
    };
  }
  throw new Error(`no free test subnet among 1..${SUBNETS} (leases in ${LEASES})`);
}

export type TestClusterOptions = Omit<LocalClusterOptions, 'name' | 'subnet' | 'root' | 'log' | 'fresh'>;

/** A test or hook of the suite failed (its results are final when its afterAll runs). */
function failed(task: Readonly<RunnerTask>): boolean {
  if (task.result?.state === 'fail') return true;
  return 'tasks' in task && (task as RunnerTestSuite).tasks.some((t) => failed(t));
}

/** Registers beforeAll/afterAll for a cluster; the returned getter throws before it is up. */
export function useTestCluster(options: TestClusterOptions): () => LocalCluster {
  let cluster: LocalCluster | null = null;
  let lease: Awaited<ReturnType<typeof leaseSubnet>> | null = null;
  const log = process.env.DROVER_TEST_LOG ? createLogger('test-cluster') : silentLogger();

  beforeAll(async () => {
    lease = await leaseSubnet();
    cluster = await clusterUp({ ...options, name: `t${lease.subnet}`, subnet: lease.subnet, fresh: true, log });
  });

  // eslint-disable-next-line no-empty-pattern -- vitest passes the suite second and wants the first destructured
  afterAll(async ({}, suite) => {
    let keptBy: number | undefined;
    try {
      // A failed test's story is in the services' logs, which go with the cluster: keep them first.
      if (cluster !== null && (failed(suite) || process.env.DROVER_KEEP_LOGS)) {
        const dir = failedLogsDir((suite as { file?: { filepath?: string } }).file?.filepath ?? suite.name);
        console.log(`kept ${await keepClusterLogs(cluster.root, dir)} log file(s) of cluster ${cluster.name} in ${dir}`);
      }
      // Under the integration tier's global set-up the cluster goes down while the next file sets up (background-down.ts).
      const downs = process.env[BACKGROUND_DOWNS];
      if (lease && downs) keptBy = downInBackground(downs, `t${lease.subnet}`, lease.file);
      else if (lease) await clusterDown(`t${lease.subnet}`, undefined, log);
    } finally {
      lease?.release(keptBy);
    }
  });

  return () => {
    if (cluster === null) throw new Error('the test cluster is not up (did beforeAll fail?)');
    return cluster;
  };
}

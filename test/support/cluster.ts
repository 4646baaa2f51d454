import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { createLogger, silentLogger } from '#common/log.ts';
import { claimedSubnets, clusterDown, clusterUp, type LocalCluster, type LocalClusterOptions } from '../../cli/local-cluster/index.ts';

/**
 * A local cluster for one test file: up in `beforeAll`, down in `afterAll`.
 *
 *   const cluster = useTestCluster({ nodes: 3 });
 *   it('…', () => { const n2 = cluster().nodes[1]!; … });
 *
 * Several test runs share this machine (and the demo cluster on subnet 0), so each file
 * leases a free subnet s ≥ 1 and names its cluster `t<s>`: addresses 127.0.s.(10+i) and
 * every pool, bridge and socket are its own. A lease is a file holding the owner's pid;
 * a dead owner's lease is taken over, and `clusterUp` then cleans its crashed cluster
 * (same name).
 */
const LEASES = '/run/drover/test-leases';
const SUBNETS = 40;

function ownerAlive(file: string): boolean {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) return false;
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Claims the lowest free subnet (no live lease, no other local cluster on it); returns it
 * and a release function.
 */
export async function leaseSubnet(): Promise<{ subnet: number; release: () => void }> {
  mkdirSync(LEASES, { recursive: true });
  const claims = await claimedSubnets();
  for (let subnet = 1; subnet <= SUBNETS; subnet++) {
    if (claims.some((claim) => claim.subnet === subnet && claim.name !== `t${subnet}`)) continue;
    const file = join(LEASES, String(subnet));
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(file, 'wx');
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return { subnet, release: () => rmSync(file, { force: true }) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (ownerAlive(file)) break;
        rmSync(file, { force: true });
      }
    }
  }
  throw new Error(`no free test subnet among 1..${SUBNETS} (leases in ${LEASES})`);
}

export type TestClusterOptions = Omit<LocalClusterOptions, 'name' | 'subnet' | 'root' | 'log'>;

/** Registers beforeAll/afterAll for a cluster; the returned getter throws before it is up. */
export function useTestCluster(options: TestClusterOptions): () => LocalCluster {
  let cluster: LocalCluster | null = null;
  let lease: Awaited<ReturnType<typeof leaseSubnet>> | null = null;
  const log = process.env.DROVER_TEST_LOG ? createLogger('test-cluster') : silentLogger();

  beforeAll(async () => {
    lease = await leaseSubnet();
    cluster = await clusterUp({ ...options, name: `t${lease.subnet}`, subnet: lease.subnet, log });
  });

  afterAll(async () => {
    try {
      if (lease) await clusterDown(`t${lease.subnet}`, undefined, log);
    } finally {
      lease?.release();
    }
  });

  return () => {
    if (cluster === null) throw new Error('the test cluster is not up (did beforeAll fail?)');
    return cluster;
  };
}

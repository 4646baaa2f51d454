import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith, LOCAL_CLUSTER } from '../support/require.ts';
import { leaseSubnet } from '../support/cluster.ts';

/**
 * The demo's flow, small (scripts/demo.sh runs it on the cluster `demo` with 32 MiB):
 * `drover cluster up`, `drover deploy examples/redis/…` (the topology rewritten to this
 * test's subnet), `drover demo redis n2` with 4 MiB of data — Redis moved from node 1 to
 * node 2 while a client writes through node 1's proxy — and no acknowledged write lost.
 */
const repo = join(import.meta.dirname, '../..');

describeWith(LOCAL_CLUSTER, 'the demo: Redis moved under load', () => {
  let lease: Awaited<ReturnType<typeof leaseSubnet>>;
  let name = '';
  let dir = '';
  let control = '';
  const drover = (...args: string[]) =>
    execa('node', [join(repo, 'bin/drover.js'), ...args], { cwd: repo, reject: false, timeout: 280_000, env: { DROVER_LOG_LEVEL: 'warn', DROVER_CONFIG: join(tmpdir(), `drover-demo-flow-${process.pid}.yml`), DROVER_CONTEXT: control } });

  beforeAll(async () => {
    lease = await leaseSubnet();
    name = `t${lease.subnet}`;
    // `cluster up` writes the context (server and the operator's certificate) the CLI then uses.
    control = name;
    dir = await mkdtemp(join(tmpdir(), 'drover-demo-test-'));
    const up = await drover('cluster', 'up', '--name', name, '--subnet', String(lease.subnet), '--nodes', '2', '--images', 'busybox,redis');
    if (up.exitCode !== 0) throw new Error(`cluster up failed: ${up.stderr}`);
  });

  afterAll(async () => {
    try {
      if (name) await drover('cluster', 'down', '--name', name);
    } finally {
      lease?.release();
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  });

  it('moves Redis from node 1 to node 2 while a client writes through the proxy, and loses no acknowledged write', async () => {
    const topology = join(dir, 'topology.yml');
    await writeFile(topology, `version: 1\nnodes:\n  "127.0.${lease.subnet}.11": ["redis"]\n`);
    const deploy = await drover('deploy', topology, 'examples/redis/docker-compose.yml');
    expect(deploy.stderr).toBe('');
    expect(deploy.exitCode).toBe(0);

    const demo = await drover('demo', 'redis', 'n2', '--load-mib', '4', '--timeout', '240');
    expect(demo.stderr).toBe('');
    expect(demo.stdout).toMatch(/lost writes\s+0 of \d+ acknowledged writes missing/);
    expect(demo.stdout).toContain(`moved "redis" to 127.0.${lease.subnet}.12`);
    expect(demo.exitCode).toBe(0);

    const status = await drover('status', '--json');
    const app = (JSON.parse(status.stdout) as { applications: Array<{ name: string; node_uuid: string; state: string }>; nodes: Array<{ uuid: string; host: string }> });
    const redis = app.applications.find((a) => a.name === 'redis');
    expect(app.nodes.find((n) => n.uuid === redis?.node_uuid)?.host).toBe(`127.0.${lease.subnet}.12`);
  });
});

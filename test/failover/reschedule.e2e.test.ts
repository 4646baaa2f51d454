import { execa } from 'execa';
import { beforeAll, expect, it } from 'vitest';
import { useTestCluster } from '../support/cluster.ts';
import { cliEnv } from '../../local-cluster/index.ts';
import { LOCAL_CLUSTER, describeWith } from '../support/require.ts';
import { until } from '../migration/stack.ts';
import { pong, redisCompose, ReplicationWorld, type RedisApp } from '../replication/world.ts';
import { killNode } from './kill-node.ts';

// The rest of host failure on a 3-node local cluster with drover's processes (docs/DESIGN.md
// §18–§19): (e) a stateless application on a node that dies is rescheduled by the placement
// rules and answers again through another node's proxy; (f) `drover node drain` of a node
// running two applications (one with data, moved live with it; one stateless) moves both off
// and leaves the node cordoned. Node 1 dies in (e); (f) drains node 2 onto node 3.
const LONG = 180_000;

/** A Redis without a dataset: a stateless application (no volumes). */
function statelessCompose(name: string, port: number): string {
  return `services:
  ${name}:
    image: drover/redis:latest
    command: ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
    ports: ["${port}:6379"]
    x-drover-healthcheck: { type: tcp, port: 6379, send: "PING\\r\\n", expect: "+PONG", interval: 1s, timeout: 2s, retries: 3 }
`;
}

describeWith(LOCAL_CLUSTER, 'rescheduling and draining (3-node local cluster)', () => {
  const cluster = useTestCluster({ nodes: 3, images: ['busybox', 'redis'], poolSizeMiB: 1024 });
  let world: ReplicationWorld;

  async function deploy(project: string, compose: string, node: number): Promise<void> {
    await world.api.deploy({
      project,
      compose: { file: `${project}.yml`, text: compose },
      topology: { file: 'topology.yml', text: `version: 1\nnodes:\n  "${world.node(node).address}": ["${project}"]\n` },
    });
    await until(`${project} healthy on n${node}`, async () => {
      const s = await world.api.application(project);
      return s.state === 'running' && s.health === 'healthy' && s.node_uuid === world.node(node).uuid;
    }, 120_000, 250);
  }

  beforeAll(async () => {
    world = await ReplicationWorld.start(cluster());
  }, LONG);

  it('reschedules a stateless application of a node that dies, and it answers again through another node', async () => {
    const web: RedisApp = { name: 'web', datasetId: '', port: 16810 };
    await deploy('web', statelessCompose('web', web.port), 1);
    await until('PONG from web through n3', () => pong(world.proxy(web, 3)), 60_000, 250);

    const { at } = await killNode(world.cluster, 1);
    const moved = await until('web running on another node', async () => {
      const a = await world.api.application('web');
      return a.node_uuid !== world.node(1).uuid && a.state === 'running' && a;
    }, 90_000, 250);
    await until('PONG from web through n3 again', () => pong(world.proxy(web, 3)), 30_000, 250);
    const backAfterS = (performance.now() - at) / 1000;
    console.log(`stateless web: rescheduled to ${world.node(world.indexOf(moved.node_uuid!)).name}, answering ${backAfterS.toFixed(1)} s after n1 died`);
    const record = (await world.api.migrations()).find((m) => m.failover !== undefined && m.application === 'web');
    expect(record).toMatchObject({ from: world.node(1).uuid, to: moved.node_uuid, dataset_ids: [], phase: 'done' });
    expect(record!.failover!.snapshot_age_seconds).toBeNull();
    // Lease TTL 10 s + margin 1 s, then a start: well inside a minute.
    expect(backAfterS).toBeLessThan(60);
  }, LONG);

  it('drains a node running two applications: both move off with their data, and the node stays cordoned', async () => {
    const cache: RedisApp = { name: 'cache', datasetId: '', port: 16811 };
    await deploy('cache', redisCompose('cache', cache.port, null), 2);
    await deploy('plain', statelessCompose('plain', 16812), 2);
    // Data in the stateful one, to find after the move.
    const { RedisConnection } = await import('../../cli/demo/redis-client.ts');
    const c = await RedisConnection.connect(world.proxy(cache, 3));
    try {
      await c.run((r) => r.set('drained', 'kept'));
    } finally {
      c.close();
    }

    const drain = await execa('node', ['bin/drover.js', 'node', 'drain', 'n2', '--timeout', '150'], {
      cwd: `${import.meta.dirname}/../..`,
      env: { ...cliEnv(world.cluster), DROVER_LOG_LEVEL: 'warn' },
      reject: false,
      timeout: 170_000,
    });
    console.log(`drover node drain n2 (exit ${drain.exitCode}):\n${drain.stdout}${drain.stderr}`);
    expect(drain.exitCode).toBe(0);
    // The drain ends when n2 holds nothing; the last move's application may still be starting on n3.
    for (const name of ['cache', 'plain']) {
      const a = await until(`${name} running on n3`, async () => {
        const s = await world.api.application(name);
        return s.node_uuid === world.node(3).uuid && s.state === 'running' && s;
      }, 60_000, 250);
      expect(a.node_uuid).toBe(world.node(3).uuid);
    }
    const d = await RedisConnection.connect(world.proxy(cache, 3));
    try {
      expect(await d.run((r) => r.get('drained'))).toBe('kept');
    } finally {
      d.close();
    }
    const n2 = (await world.api.nodes()).find((n) => n.uuid === world.node(2).uuid) as unknown as { cordoned?: boolean; draining?: boolean };
    expect(n2.cordoned).toBe(true);
    const ps = await execa('docker', ['-H', world.node(2).dockerHost!, 'ps', '--format', '{{.Names}}'], { timeout: 30_000 });
    expect(ps.stdout.split('\n').filter((n) => n.includes('cache') || n.includes('plain'))).toEqual([]);
  }, LONG);
});

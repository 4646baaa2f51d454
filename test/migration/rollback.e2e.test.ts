import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { useTestCluster } from '../support/cluster.ts';
import { LOCAL_CLUSTER, describeWith } from '../support/require.ts';
import { facts, finished, redisOf, type RedisApp } from './redis-world.ts';
import { MigrationStack, until } from './stack.ts';

// A move that cannot finish rolls back to the source and says why (docs/DESIGN.md §5
// "Deadlines"): the application's image exists on node 1 only and the local cluster has no
// registry, so node 2 can neither warm-start nor start it after handoff. With a 15 s handoff
// deadline the control service rolls the move back: Redis runs on node 1 again with its
// dataset writable there, and status names node 2's error.
const LONG = 300_000;
const MiB = 1024 * 1024;

describeWith(LOCAL_CLUSTER, 'a move whose target cannot start the image (2-node local cluster)', () => {
  const cluster = useTestCluster({ nodes: 2, images: ['redis'] });
  let dir: string;
  let stack: MigrationStack;
  const uuid = (i: number) => stack.node(i).uuid;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-rollback-e2e-'));
    stack = await MigrationStack.start(cluster(), dir, { ackWaitMs: 1_000, controlArgs: ['--handoff-deadline', '15', '--migration-stall', '60'] });
  });

  afterAll(async () => {
    await stack?.stop();
    if (dir && process.env.DROVER_KEEP_LOGS === undefined) await rm(dir, { recursive: true, force: true });
  }, LONG);

  it('rolls back to the source within the deadline, runs it there again, and says why', async () => {
    await execa('docker', ['-H', stack.node(1).dockerHost!, 'tag', 'drover/redis:latest', 'drover/x:1']);
    const dataset = await stack.api.createDataset({ primary: uuid(1), maximum_size: 256 * MiB, metadata: { name: 'lost' } });
    await stack.api.createContainer({
      name: 'lost',
      node_uuid: uuid(1),
      image: 'drover/x:1',
      command_line: ['redis-server', '--bind', '0.0.0.0', '--protected-mode', 'no', '--dir', '/data'],
      ports: [{ internal: 6379, external: 16379 }],
      volumes: [{ dataset_id: dataset.dataset_id, mountpoint: '/data' }],
      restart_policy: { name: 'always' },
    });
    const app: RedisApp = { name: 'lost', datasetId: dataset.dataset_id };
    await redisOf(stack, app);

    const started = Date.now();
    const answer = await stack.api.moveContainer('lost', uuid(2));
    const end = await finished(stack, answer.migration!.id, 180_000);
    expect(end).toMatchObject({ phase: 'failed', from: uuid(1), to: uuid(2) });
    expect(end.error).toMatch(/^rolled back: target node \S+ did not make lost ready within 15 s \(.*drover\/x:1.*\)$/);
    expect(Date.now() - started).toBeLessThan(120_000);

    expect((await redisOf(stack, app)).node).toBe(uuid(1));
    await until('node 1 alone runs it, its dataset writable there only', async () => {
      const f = await facts(stack, app);
      return JSON.stringify(f) === JSON.stringify([{ index: 1, running: true, writable: true }, { index: 2, running: false, writable: false }]);
    }, 60_000);
    const status = await stack.api.application('lost');
    expect(status).toMatchObject({ node_uuid: uuid(1), state: 'running', migration: null });
    expect(status.last_error).toMatch(/drover\/x:1/);
  }, LONG);
});

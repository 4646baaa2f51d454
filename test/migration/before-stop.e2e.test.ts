import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RedisConnection } from '../../cli/demo/redis-client.ts';
import { useTestCluster } from '../support/cluster.ts';
import { LOCAL_CLUSTER, describeWith } from '../support/require.ts';
import { finished, missingKeys, onePrimary, redisOf, writeKeys, type RedisApp } from './redis-world.ts';
import { MigrationStack, until } from './stack.ts';

// The move's before_stop hook end to end (docs/DESIGN.md §5): deployed from Compose's
// `x-drover.move.before_stop`, run by the source agent inside the serving container before
// the last pre-copy round, its writes carried to the target with everything else.
const LONG = 600_000;

describeWith(LOCAL_CLUSTER, 'the before_stop hook of a move (2-node local cluster)', () => {
  const cluster = useTestCluster({ nodes: 2, images: ['redis'] });
  let dir: string;
  let stack: MigrationStack;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-before-stop-e2e-'));
    stack = await MigrationStack.start(cluster(), dir, { ackWaitMs: 3_000 });
  });

  afterAll(async () => {
    await stack?.stop();
    if (dir && process.env.DROVER_KEEP_LOGS === undefined) await rm(dir, { recursive: true, force: true });
  }, LONG);

  it('runs the hook in the serving container before the stop, and what it wrote arrives with the data', async () => {
    const [n1, n2] = [stack.node(1), stack.node(2)];
    // The hook talks to Redis: it can only succeed while Redis still serves.
    const hook = ['sh', '-c', 'redis-cli SET hooked "before the stop" && redis-cli BGREWRITEAOF'];
    // Until the control service knows both nodes by address (their first reports).
    const deploy = () => stack.api.deploy({
      project: 'hooked',
      compose: {
        file: 'compose.yml',
        text: `services:
  hooked:
    image: drover/redis:latest
    command: ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--appendonly", "yes", "--appendfsync", "always", "--dir", "/data"]
    ports: ["16480:6379"]
    volumes: ["data:/data"]
    restart: always
    x-drover: { move: { before_stop: { exec: ${JSON.stringify(hook)}, timeout: 30s } } }
volumes:
  data: {}
`,
      },
      topology: { file: 'topology.yml', text: `version: 1\nnodes:\n  "${n1.address}": ["hooked"]\n` },
    });
    await until('the deploy to be accepted', () => deploy().then(() => true, (err: Error) => (/No known node/.test(err.message) ? null : Promise.reject(err))), 120_000, 1_000);
    const datasetId = await until('the dataset', async () => (await stack.api.datasets()).datasets.find((d) => d.metadata.name === 'hooked_data' && !d.deleted)?.dataset_id);
    const app: RedisApp = { name: 'hooked', datasetId };
    expect((await stack.api.application('hooked')).node_uuid).toBe(n1.uuid);
    const keys = await writeKeys(stack, app, 'k', 200);

    const answer = await stack.api.moveApplication('hooked', n2.uuid);
    const moved = await finished(stack, answer.migration!.id);
    expect(moved).toMatchObject({ phase: 'done', error: null });
    expect(await onePrimary(stack, app)).toBe(2);
    expect(await missingKeys(stack, app, keys)).toEqual([]);
    const at = await redisOf(stack, app);
    expect(at.node).toBe(n2.uuid);
    const client = await RedisConnection.connect(at, { commandTimeoutMs: 5_000 });
    try {
      expect(await client.run((redis) => redis.get('hooked'))).toBe('before the stop');
    } finally {
      client.close();
    }
    // The source agent says it ran, and that a pre-copy round followed it before the cutover.
    const log = (await readFile(join(dir, `agent-${n1.name}.log`), 'utf8').catch(() => '')).split('\n');
    const ran = log.findIndex((l) => l.includes('"before-stop hook ran"') && l.includes('"outcome":"ok"'));
    expect(ran).toBeGreaterThanOrEqual(0);
    expect(log.slice(ran).some((l) => l.includes('"pre-copy round sent"') && l.includes('"afterHook":true'))).toBe(true);
  }, LONG);
});

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { useTestCluster } from '../support/cluster.ts';
import { LOCAL_CLUSTER, describeWith } from '../support/require.ts';
import { MiB, deployRedis, finished, missingKeys, onePrimary, writeKeys, type RedisApp } from './redis-world.ts';
import { MigrationStack } from './stack.ts';

// The same move over the tls transport: each agent serves its mutual-TLS transfer endpoint
// (certificates from the cluster CA) and the source sends to the target's agent, not its sshd.
const LONG = 600_000;

describeWith([...LOCAL_CLUSTER, 'native-pump'], 'moving an application with its data over the tls transport (2-node local cluster)', () => {
  const cluster = useTestCluster({ nodes: 2, images: ['redis'] });
  let dir: string;
  let stack: MigrationStack;
  let app: RedisApp;
  let keys: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-migration-tls-'));
    stack = await MigrationStack.start(cluster(), dir, { transport: 'tls' });
  }, LONG);

  afterAll(async () => {
    await stack?.stop();
    if (dir && process.env.DROVER_KEEP_LOGS === undefined) await rm(dir, { recursive: true, force: true });
  }, LONG);

  it('moves Redis to node 2 over mutual TLS, and every key is there', async () => {
    app = await deployRedis(stack, 'tlsstore', 1, 16);
    keys = await writeKeys(stack, app, 'one', 300);
    const answer = await stack.api.moveContainer(app.name, stack.node(2).uuid);
    const m = await finished(stack, answer.migration!.id);
    expect(m).toMatchObject({ phase: 'done', error: null });
    expect(await onePrimary(stack, app)).toBe(2);
    expect(await missingKeys(stack, app, keys)).toEqual([]);
    // Both agents have the native pump: every step's stream left their JavaScript.
    const sent = (await readFile(join(dir, 'agent-n1.log'), 'utf8')).split('\n').filter((l) => l.includes('"snapshot sent"'));
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.map((l) => (JSON.parse(l) as { dataPath?: string }).dataPath)).toEqual(sent.map(() => 'native'));
  }, LONG);

  it('moves it back over TLS incrementally', async () => {
    keys.push(...(await writeKeys(stack, app, 'two', 100)));
    const answer = await stack.api.moveContainer(app.name, stack.node(1).uuid);
    const m = await finished(stack, answer.migration!.id);
    expect(m).toMatchObject({ phase: 'done', error: null });
    expect(m.bytes_sent).toBeLessThan(2 * MiB);
    expect(await onePrimary(stack, app)).toBe(1);
    expect(await missingKeys(stack, app, keys)).toEqual([]);
  }, LONG);
});

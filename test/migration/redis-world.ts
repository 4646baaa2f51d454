/**
 * The world the migration e2e tests look at: Redis applications with a dataset, deployed
 * through the API; their keys (written and read through each one's published port); and
 * the invariant checked on the nodes themselves — exactly one node with the container
 * running and the dataset writable.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { isTerminal } from '#common/migration-protocol.ts';
import type { Migration } from '#common/model.ts';
import { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';
import { RedisConnection } from '../../cli/demo/redis-client.ts';
import { until, type MigrationStack } from './stack.ts';

export const MiB = 1024 * 1024;

export interface RedisApp {
  name: string;
  datasetId: string;
}

let nextPort = 16400;

/** Redis with a dataset on node `index`, fsyncing every write (so an acknowledged key is on disk). */
export async function deployRedis(stack: MigrationStack, name: string, index: number, ballastMiB = 0): Promise<RedisApp> {
  const node = stack.node(index);
  const dataset = await stack.api.createDataset({ primary: node.uuid, maximum_size: 1024 * MiB, metadata: { name } });
  await stack.api.createContainer({
    name,
    node_uuid: node.uuid,
    image: 'drover/redis:latest',
    command_line: ['redis-server', '--bind', '0.0.0.0', '--protected-mode', 'no', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', '/data'],
    ports: [{ internal: 6379, external: nextPort++ }],
    volumes: [{ dataset_id: dataset.dataset_id, mountpoint: '/data' }],
    restart_policy: { name: 'always' },
  });
  const app = { name, datasetId: dataset.dataset_id };
  await redisOf(stack, app);
  if (ballastMiB > 0) {
    const path = await until('dataset path', async () => (await stack.api.datasetStates()).find((d) => d.dataset_id === app.datasetId && d.path)?.path);
    await writeBallast(join(path, 'ballast.bin'), ballastMiB);
  }
  return app;
}

/** Random (incompressible) bytes, so the dataset's size is real. */
async function writeBallast(file: string, mib: number): Promise<void> {
  const handle = await open(file, 'w');
  try {
    for (let i = 0; i < mib; i++) await handle.write(randomBytes(MiB));
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Where the application answers now (waits until one node reports it running). */
export async function redisOf(stack: MigrationStack, app: RedisApp, timeoutMs = 120_000): Promise<{ host: string; port: number; node: string }> {
  return until(`${app.name} running`, async () => {
    const running = (await stack.api.containerStates()).filter((c) => c.name === app.name && c.running && c.published.length > 0);
    if (running.length !== 1) return null;
    const p = running[0]!.published[0]!;
    // Answering PING, not just published.
    const client = await RedisConnection.connect({ host: p.host, port: p.host_port }, { connectTimeoutMs: 2_000, commandTimeoutMs: 2_000 });
    try {
      if (!(await client.ping())) return null;
    } finally {
      client.close();
    }
    return { host: p.host, port: p.host_port, node: running[0]!.node_uuid };
  }, timeoutMs, 200);
}

/** Writes `count` keys; returns them once each was acknowledged. */
export async function writeKeys(stack: MigrationStack, app: RedisApp, prefix: string, count: number): Promise<string[]> {
  const at = await redisOf(stack, app);
  const client = await RedisConnection.connect(at, { commandTimeoutMs: 5_000 });
  const keys: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const key = `${prefix}:${i}`;
      if ((await client.run((redis) => redis.set(key, valueOf(key)))) !== 'OK') throw new Error(`SET ${key} not acknowledged`);
      keys.push(key);
    }
  } finally {
    client.close();
  }
  return keys;
}

/**
 * Writes keys one after the other until `stop` aborts or a write fails (the application was
 * stopped for a cutover); `acked` holds every key Redis acknowledged.
 */
export function writeWhileMoving(stack: MigrationStack, app: RedisApp, prefix: string, stop: AbortSignal): { acked: string[]; done: Promise<void> } {
  const acked: string[] = [];
  const done = (async () => {
    const at = await redisOf(stack, app);
    const client = await RedisConnection.connect(at, { commandTimeoutMs: 2_000 });
    try {
      for (let i = 0; !stop.aborted; i++) {
        const key = `${prefix}:${i}`;
        try {
          if ((await client.run((redis) => redis.set(key, valueOf(key)))) !== 'OK') return;
        } catch {
          return;
        }
        acked.push(key);
      }
    } finally {
      client.close();
    }
  })();
  return { acked, done };
}

/** The keys that are missing or wrong on the application wherever it runs now. */
export async function missingKeys(stack: MigrationStack, app: RedisApp, keys: string[]): Promise<string[]> {
  const at = await redisOf(stack, app);
  const client = await RedisConnection.connect(at, { commandTimeoutMs: 5_000 });
  const missing: string[] = [];
  try {
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      const values = await client.run((redis) => redis.mget(chunk));
      chunk.forEach((k, j) => {
        if (values[j] !== valueOf(k)) missing.push(k);
      });
    }
  } finally {
    client.close();
  }
  return missing;
}

function valueOf(key: string): string {
  return `value-of-${key}`;
}

/** Waits until the migration is finished (done or failed); returns it. */
export async function finished(stack: MigrationStack, id: string, timeoutMs = 300_000): Promise<Migration> {
  return until(`migration ${id} finished`, async () => {
    const m = await stack.api.migration(id);
    return isTerminal(m.phase) && m;
  }, timeoutMs, 100);
}

/** Waits until the migration reaches `phase` (or a later one); returns it. */
export async function reached(stack: MigrationStack, id: string, phases: Migration['phase'][], timeoutMs = 240_000): Promise<Migration> {
  return until(`migration ${id} in ${phases.join('/')}`, async () => {
    const m = await stack.api.migration(id);
    return phases.includes(m.phase) && m;
  }, timeoutMs, 20);
}

interface NodeFacts {
  index: number;
  running: boolean;
  writable: boolean;
}

/** What each node really has: the container running? the dataset writable? (docker and zfs, not the API). */
export async function facts(stack: MigrationStack, app: RedisApp): Promise<NodeFacts[]> {
  const out: NodeFacts[] = [];
  for (const node of stack.cluster.nodes) {
    const inspect = await execa('docker', ['-H', node.dockerHost!, 'inspect', '--format', '{{.State.Running}} {{.State.Pid}}', `drover-${app.name}`], { reject: false, timeout: 30_000 });
    const [running, pid] = inspect.stdout.trim().split(' ');
    const ds = await new ZfsStore({ pool: node.pool }).getDataset(app.datasetId);
    // A container started behind a gate (a warm start) runs the gate, not Redis: its pid 1 is
    // still the host's busybox. Read the process itself, not what the agent says about it.
    const gated = running === 'true' && (await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '')).startsWith('/.drover-gate-bin/busybox\0');
    out.push({ index: node.index, running: inspect.exitCode === 0 && running === 'true' && !gated, writable: ds !== null && !ds.readonly });
  }
  return out;
}

/**
 * The invariant after convergence: exactly one node runs the container, and it is the one
 * node with the dataset writable. Waits for it (bounded); returns that node's index.
 */
export async function onePrimary(stack: MigrationStack, app: RedisApp, timeoutMs = 120_000): Promise<number> {
  const found = await until(`exactly one primary for ${app.name}`, async () => {
    const f = await facts(stack, app);
    const running = f.filter((n) => n.running);
    const writable = f.filter((n) => n.writable);
    return running.length === 1 && writable.length === 1 && running[0]!.index === writable[0]!.index && running[0]!.index;
  }, timeoutMs, 250);
  return found;
}

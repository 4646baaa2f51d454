import { createServer, type Server } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '#common/api-client.ts';
import { isDroverError } from '#common/errors.ts';
import { silentLogger } from '#common/log.ts';
import { buildApp } from './app.ts';
import { Control } from './control.ts';
import { MemoryConfigStore } from './store/memory-store.ts';
import { datasetId, nodeId, report } from './testing/harness.ts';

// The client against a real listening control service on 127.0.0.1 (ephemeral port).
let app: FastifyInstance | null = null;
let control: Control | null = null;
afterEach(async () => {
  await app?.close();
  await control?.stop();
  app = null;
  control = null;
});

async function serve(): Promise<ApiClient> {
  control = new Control({ store: new MemoryConfigStore(), log: silentLogger() });
  await control.start();
  app = buildApp({ control, log: silentLogger(), version: '0.0.0-test' });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return new ApiClient({ baseUrl: address });
}

describe('ApiClient against a listening control service', () => {
  it("answers a waiting long-poll within 100 ms of a change to the node's configuration", async () => {
    const client = await serve();
    await client.report(report(1));
    const { version } = await client.desired(nodeId(1));
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      const current = (await client.desired(nodeId(1))).version;
      let answeredAt = 0;
      const poll = client.desired(nodeId(1), { after: current, waitMs: 10_000 }).then((d) => {
        answeredAt = performance.now();
        return d;
      });
      await new Promise((r) => setTimeout(r, 30));
      await client.createContainer({ name: `app${i}`, image: 'nginx', node_uuid: nodeId(1) });
      const acknowledgedAt = performance.now();
      const pushed = await poll;
      expect(pushed.version).toBeGreaterThan(version);
      expect(pushed.applications.map((a) => a.name)).toContain(`app${i}`);
      samples.push(answeredAt - acknowledgedAt);
    }
    expect(Math.max(...samples)).toBeLessThan(100);
  });

  it('throws DroverError with the server code, description, status and paths', async () => {
    const client = await serve();
    await client.createDataset({ primary: nodeId(1), dataset_id: datasetId(1) });
    const conflict = await client.createDataset({ primary: nodeId(1), dataset_id: datasetId(1) }).catch((e: unknown) => e);
    expect(isDroverError(conflict, 'DROVER_DATASET_ID_IN_USE')).toBe(true);
    expect((conflict as Error).message).toBe('The provided dataset_id is already in use.');
    expect((conflict as { detail: Record<string, unknown> }).detail).toMatchObject({ status: 409, method: 'POST' });
    const invalid = await client.createDataset({ primary: 'nope' } as never).catch((e: unknown) => e);
    expect((invalid as { detail: Record<string, unknown> }).detail).toMatchObject({ status: 400, errors: ['primary: must be a lower-case UUID'] });
    expect(await client.nodeByEra('never')).toBeNull();
  });

  it('retries a conditional write on 412 until it applies', async () => {
    const client = await serve();
    const { tag } = await client.datasets();
    await client.createDataset({ primary: nodeId(1) });
    const stale = await client.createDataset({ primary: nodeId(1) }, { ifMatches: tag }).catch((e: unknown) => e);
    expect(isDroverError(stale, 'DROVER_CONFIGURATION_CHANGED')).toBe(true);
    let attempts = 0;
    const made = await client.conditional(async (current) => {
      attempts++;
      return client.createDataset({ primary: nodeId(2) }, { ifMatches: attempts === 1 ? tag : current });
    });
    expect(made.primary).toBe(nodeId(2));
    expect(attempts).toBe(2);
  });

  it('streams events: a configuration change and a node coming up', async () => {
    const client = await serve();
    const stop = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const event of client.events({ signal: stop.signal })) {
        seen.push(event.type);
        if (seen.includes('node') && seen.includes('configuration')) stop.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    await client.report(report(1));
    await Promise.race([reading, new Promise((_, reject) => setTimeout(() => reject(new Error('no events within 3 s')), 3000))]);
    expect(seen).toEqual(expect.arrayContaining(['node', 'configuration']));
  });

  it('ends a waiting long-poll at once when the server shuts down', async () => {
    const client = await serve();
    const { version } = await client.desired(nodeId(1));
    const started = performance.now();
    const poll = client.desired(nodeId(1), { after: version, waitMs: 20_000 });
    await new Promise((r) => setTimeout(r, 50));
    await app!.close();
    app = null;
    await poll.catch(() => undefined);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('stops a long-poll when its AbortSignal aborts', async () => {
    const client = await serve();
    const { version } = await client.desired(nodeId(1));
    const stop = new AbortController();
    const poll = client.desired(nodeId(1), { after: version, waitMs: 20_000, signal: stop.signal }).catch((e: unknown) => e);
    setTimeout(() => stop.abort(), 50);
    expect(isDroverError(await poll)).toBe(true);
  });
});

describe('ApiClient without a control service', () => {
  let server: Server | null = null;
  afterEach(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = null;
  });

  it('retries an idempotent GET on connection errors a bounded number of times, then throws DROVER_CONTROL_UNREACHABLE', async () => {
    let connections = 0;
    server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const client = new ApiClient({ baseUrl: `http://127.0.0.1:${port}`, getAttempts: 3 });
    const err = await client.nodes().catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_CONTROL_UNREACHABLE')).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(true);
    expect(connections).toBe(3);
    const write = await client.createDataset({ primary: nodeId(1) }).catch((e: unknown) => e);
    expect(isDroverError(write, 'DROVER_CONTROL_UNREACHABLE')).toBe(true);
    expect(connections).toBe(4);
  });
});

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '#common/api-client.ts';
import { caPaths, issuedPaths } from '#common/cluster-ca.ts';
import { isDroverError } from '#common/errors.ts';
import { silentLogger } from '#common/log.ts';
import { buildApp } from './app.ts';
import { Control } from './control.ts';
import { MemoryConfigStore } from './store/memory-store.ts';
import { nodeId, report } from './testing/harness.ts';
import { tlsHarness, type TlsHarness } from './testing/tls-harness.ts';

// The one client with several control services (common/failover-transport.ts): real
// listening services on 127.0.0.1, and raw servers where a test needs a misbehaving one.
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function service(): Promise<{ url: string; control: Control; app: FastifyInstance }> {
  const control = new Control({ store: new MemoryConfigStore(), log: silentLogger() });
  await control.start();
  const app = buildApp({ control, log: silentLogger(), version: '0.0.0-test' });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
    await control.stop();
  };
  cleanups.push(close);
  return { url, control, app: Object.assign(app, { closeAll: close }) };
}

interface Seen {
  method: string;
  url: string;
  body: string;
}

/** A raw HTTP server answering with `handler`; records each request it read. */
async function raw(handler: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      const one = { method: req.method ?? '', url: req.url ?? '', body };
      seen.push(one);
      handler(req, res, one);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r).closeAllConnections()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

/** A port nothing listens on (bound, then closed). */
async function deadUrl(): Promise<string> {
  const s = createHttpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

describe('the API client with several control services', () => {
  it("carries on reading and reporting through the second service when the first stops, then stays there", async () => {
    const a = await service();
    const b = await service();
    const client = new ApiClient({ baseUrl: [a.url, b.url], getAttempts: 1, timeoutMs: 20_000 });
    await client.report(report(1));
    expect(a.control.observed.get(nodeId(1))).toBeDefined();
    expect(client.endpoints.preferred).toBe(a.url);

    await (a.app as FastifyInstance & { closeAll(): Promise<void> }).closeAll();
    const began = performance.now();
    await client.report(report(1));
    const view = await client.desired(nodeId(1));
    const took = performance.now() - began;
    expect(b.control.observed.get(nodeId(1))).toBeDefined();
    expect(view.nodes.map((n) => n.uuid)).toContain(nodeId(1));
    expect(client.endpoints.preferred).toBe(b.url);
    // A refused connection moves on at once, not after a deadline.
    expect(took).toBeLessThan(8_000);
  });

  it('names every service and why when none answers', async () => {
    const [x, y] = [await deadUrl(), await deadUrl()];
    const client = new ApiClient({ baseUrl: `${x},${y}`, getAttempts: 1 });
    const err = await client.version().catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_CONTROL_UNREACHABLE')).toBe(true);
    expect((err as Error).message).toBe(`no control service answered GET /v1/version: ${x} (ECONNREFUSED), ${y} (ECONNREFUSED)`);
  });

  it('moves a read on past a service that accepts but does not answer in time, and past a 5xx', async () => {
    const hung = await raw(() => undefined);
    const failing = await raw((_req, res) => res.writeHead(500, { 'content-type': 'application/json' }).end('{"description":"boom"}'));
    const good = await service();
    const client = new ApiClient({ baseUrl: [hung.url, failing.url, good.url], getAttempts: 1, timeoutMs: 300 });
    expect((await client.version()).flocker).toBeDefined();
    expect(hung.seen).toHaveLength(1);
    expect(failing.seen).toHaveLength(1);
    expect(client.endpoints.preferred).toBe(good.url);
  });

  it('does not send a write again elsewhere when the first service may have done it, but starts the next call at the next service', async () => {
    const hung = await raw(() => undefined);
    const good = await service();
    const client = new ApiClient({ baseUrl: [hung.url, good.url], getAttempts: 1, timeoutMs: 300 });
    const err = await client.createContainer({ name: 'web', image: 'registry.example/web' }).catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_CONTROL_UNREACHABLE')).toBe(true);
    expect(hung.seen.map((s) => s.method)).toEqual(['POST']);
    expect(good.control.desired.applications).toEqual([]);
    await client.createContainer({ name: 'web', image: 'registry.example/web' });
    expect(good.control.desired.applications.map((a) => a.name)).toEqual(['web']);
    expect(hung.seen).toHaveLength(1);
  });

  it('sends a write on after a 503 (not done) but not after a 500', async () => {
    const busy = await raw((_req, res) => res.writeHead(503, { 'content-type': 'application/json' }).end('{"description":"no leader","code":"DROVER_BUSY"}'));
    const good = await service();
    const client = new ApiClient({ baseUrl: [busy.url, good.url], getAttempts: 1 });
    await client.createContainer({ name: 'web', image: 'registry.example/web' });
    expect(good.control.desired.applications.map((a) => a.name)).toEqual(['web']);

    const broken = await raw((_req, res) => res.writeHead(500, { 'content-type': 'application/json' }).end('{"description":"boom","incident":"i-1"}'));
    const other = await service();
    const client2 = new ApiClient({ baseUrl: [broken.url, other.url], getAttempts: 1 });
    const err = await client2.createContainer({ name: 'db', image: 'registry.example/db' }).catch((e: unknown) => e);
    expect((err as { detail: { status: number } }).detail.status).toBe(500);
    expect(other.control.desired.applications).toEqual([]);
  });

  it('follows a redirect to a configured service with the same method and body, and refuses one to any other host', async () => {
    const leader = await service();
    const stranger = await raw((_req, res) => res.writeHead(200).end('{}'));
    const follower = await raw((req, res) => {
      const to = req.url?.startsWith('/v1/configuration/containers') && req.headers['x-test-stranger'] === undefined ? leader.url : stranger.url;
      res.writeHead(307, { location: `${to}${req.url}` }).end();
    });
    const client = new ApiClient({ baseUrl: [follower.url, leader.url], getAttempts: 1 });
    await client.createContainer({ name: 'web', image: 'registry.example/web' });
    expect(leader.control.desired.applications.map((a) => a.name)).toEqual(['web']);
    expect(follower.seen.map((s) => JSON.parse(s.body).name)).toEqual(['web']);
    // The leader is where the next call starts.
    expect(client.endpoints.preferred).toBe(leader.url);

    const strict = new ApiClient({ baseUrl: [follower.url], getAttempts: 1 });
    const err = await strict.call('createContainer', { body: { name: 'db', image: 'registry.example/db' }, headers: { 'x-test-stranger': '1' } }).catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_CONTROL_REDIRECT_REFUSED')).toBe(true);
    expect((err as Error).message).toContain('not one of the configured control services');
    expect(stranger.seen).toEqual([]);
  });

  describe('over mutual TLS', () => {
    let h: TlsHarness | null = null;
    afterEach(async () => {
      await h?.close();
      h = null;
    });

    it('follows a redirect to the leader presenting the same client certificate', async () => {
      h = await tlsHarness();
      const caDir = join(h.dir, 'ca');
      const pair = issuedPaths(caDir, 'control', 'control');
      // A second https service of the same cluster, which redirects every request to the harness.
      const follower = createHttpsServer({ ca: readFileSync(caPaths(caDir).cert), cert: readFileSync(pair.certPath), key: readFileSync(pair.keyPath), requestCert: true, rejectUnauthorized: true }, (req, res) => {
        req.resume();
        res.writeHead(307, { location: `${h!.url}${req.url}` }).end();
      });
      await new Promise<void>((r) => follower.listen(0, '127.0.0.1', r));
      cleanups.push(() => new Promise((r) => follower.close(r).closeAllConnections()));
      const followerUrl = `https://127.0.0.1:${(follower.address() as AddressInfo).port}`;
      const client = new ApiClient({ baseUrl: [followerUrl, h.url], tls: h.identity('alice'), getAttempts: 1 });
      await client.createContainer({ name: 'web', image: 'registry.example/web' });
      // The harness lets only users create containers: alice's certificate went with the redirect.
      expect(h.control.desired.applications.map((a) => a.name)).toEqual(['web']);
    });
  });
});

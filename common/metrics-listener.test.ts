import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caPaths, initCa, issue } from './cluster-ca.ts';
import { identityOfSubject } from './identity.ts';
import { silentLogger } from './log.ts';
import { startMetricsListener, type MetricsListener, type MetricsTls } from './metrics-listener.ts';

// docs/DESIGN.md §25: /metrics behind the same mutual TLS as the API, over real sockets on 127.0.0.1.
const source = { text: async () => 'drover_test_metric 1\n', contentType: 'text/plain; version=0.0.4' };
let dir = '';
let server: MetricsTls;
/** Client identities: role → { cert, key } (PEM), all of the cluster CA but `mallory` (another CA's). */
const clients = new Map<string, { cert: string; key: string; ca: string }>();
let listener: MetricsListener;

async function pairOf(caDir: string, role: 'user' | 'node' | 'metrics' | 'control', name: string): Promise<{ cert: string; key: string; ca: string }> {
  const { paths } = await issue(caDir, { role, name, ...(role === 'control' || role === 'node' ? { ipAddresses: ['127.0.0.1'] } : {}) });
  return { cert: await readFile(paths.certPath, 'utf8'), key: await readFile(paths.keyPath, 'utf8'), ca: await readFile(caPaths(caDir).cert, 'utf8') };
}

/** GET /metrics as `who` (undefined: no client certificate); the status, or the error's code. */
function scrape(url: string, who: string | undefined): Promise<{ status: number; body: string } | { error: string }> {
  const ca = clients.get('alice')!.ca;
  const id = who === undefined ? {} : { cert: clients.get(who)!.cert, key: clients.get(who)!.key };
  return new Promise((resolve) => {
    const req = request(url, { ca, ...id, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += String(c)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drover-metrics-tls-'));
  const caDir = join(dir, 'ca');
  await initCa(caDir, 'metrics test CA');
  const own = await pairOf(caDir, 'node', 'n1');
  server = own;
  clients.set('alice', await pairOf(caDir, 'user', 'alice'));
  clients.set('prometheus', await pairOf(caDir, 'metrics', 'prometheus'));
  clients.set('n2', await pairOf(caDir, 'node', 'n2'));
  const otherDir = join(dir, 'other');
  await initCa(otherDir, 'another CA');
  clients.set('mallory', await pairOf(otherDir, 'user', 'alice'));
  listener = await startMetricsListener('127.0.0.1:0', source, silentLogger(), server);
}, 60_000);

afterAll(async () => {
  await listener?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the /metrics listener of a process with certificates', () => {
  it('serves HTTPS to a user certificate and to a scraper (drover-metrics) certificate of the cluster CA', async () => {
    expect(listener.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/metrics$/);
    for (const who of ['alice', 'prometheus']) expect(await scrape(listener.url, who)).toEqual({ status: 200, body: 'drover_test_metric 1\n' });
  });

  it('refuses a client without a certificate and one of another CA at the handshake, and a node certificate with 403', async () => {
    expect(await scrape(listener.url, undefined)).toHaveProperty('error');
    expect(await scrape(listener.url, 'mallory')).toHaveProperty('error');
    const node = await scrape(listener.url, 'n2');
    expect(node).toMatchObject({ status: 403, body: expect.stringContaining('drover-user or drover-metrics') });
  });

  it('gives a scraper certificate no role on the API', () => {
    expect(identityOfSubject({ O: 'drover-metrics', CN: 'prometheus' })).toBeNull();
  });
});

describe('plain HTTP /metrics', () => {
  it('is served when asked (http://) on a loopback address, and refused elsewhere or without certificates for https://', async () => {
    const plain = await startMetricsListener('http://127.0.0.1:0', source, silentLogger(), server);
    try {
      expect(plain.url).toMatch(/^http:\/\//);
      expect(await (await fetch(plain.url)).text()).toBe('drover_test_metric 1\n');
    } finally {
      await plain.close();
    }
    await expect(startMetricsListener('http://10.1.2.3:0', source, silentLogger(), server)).rejects.toMatchObject({ code: 'DROVER_LISTEN_FAILED', message: expect.stringContaining('only on a loopback address') });
    await expect(startMetricsListener('10.1.2.3:0', source, silentLogger(), null)).rejects.toMatchObject({ code: 'DROVER_LISTEN_FAILED' });
    await expect(startMetricsListener('https://127.0.0.1:0', source, silentLogger(), null)).rejects.toMatchObject({ code: 'DROVER_LISTEN_FAILED', message: expect.stringContaining('has none') });
  });
});

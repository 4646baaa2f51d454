import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATION_PHASES } from '#common/migration-protocol.ts';
import { datasetId, harness, headerIdentity, nodeId, observedDataset, report, type Harness } from '../testing/harness.ts';
import { IMPORT_MAP } from './assets.ts';
import { crossSiteReason } from './cross-site.ts';

let h: Harness;
afterEach(async () => h?.close());

const D = datasetId(1);

describe('the dashboard page and its files (GET /ui, GET /ui/<file>)', () => {
  it('serves the page with its import map allowed by hash and nothing else inline, from this service only', async () => {
    h = await harness();
    const page = await h.request('GET', '/ui');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const map = JSON.stringify(IMPORT_MAP);
    expect(page.body).toContain(`<script type="importmap">${map}</script>`);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain(`script-src 'self' 'sha256-${createHash('sha256').update(map).digest('base64')}'`);
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    // No URL of another origin anywhere in the page.
    expect(page.body).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
  });

  it('serves every module the page loads, and every module those import, as JavaScript from /ui/', async () => {
    h = await harness();
    const page = (await h.request('GET', '/ui')).body;
    const bare = IMPORT_MAP.imports as Record<string, string>;
    const queue = [...page.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)].map((m) => m[1]!);
    const seen = new Set<string>();
    while (queue.length > 0) {
      const url = queue.shift()!;
      if (seen.has(url)) continue;
      seen.add(url);
      const answer = await h.request('GET', url);
      expect(answer.statusCode, url).toBe(200);
      if (!url.endsWith('.js')) continue;
      expect(answer.headers['content-type'], url).toMatch(/^text\/javascript/);
      expect(answer.body, url).not.toContain('sourceMappingURL');
      for (const m of answer.body.matchAll(/(?:import|from)\s*["']([^"']+)["']/g)) {
        const spec = m[1]!;
        const target = spec.startsWith('./') ? `/ui/${spec.slice(2)}` : bare[spec];
        expect(target, `${url} imports ${spec}`).toBeDefined();
        queue.push(target!);
      }
    }
    expect([...seen].sort()).toEqual(['/ui/api.js', '/ui/htm.js', '/ui/main.js', '/ui/preact-hooks.js', '/ui/preact.js', '/ui/protocol.js', '/ui/style.css', '/ui/view-model.js', '/ui/views.js']);
  });

  it('generates protocol.js from the one list of migration phases', async () => {
    h = await harness();
    const text = (await h.request('GET', '/ui/protocol.js')).body;
    expect(text).toContain(`export const MIGRATION_PHASES = ${JSON.stringify(MIGRATION_PHASES)};`);
  });

  it('answers 304 to a request that has the current file, 404 naming an unknown file, 400 to a name that is not a file name', async () => {
    h = await harness();
    const first = await h.request('GET', '/ui/main.js');
    const again = await h.request('GET', '/ui/main.js', undefined, { 'if-none-match': String(first.headers.etag) });
    expect(again.statusCode).toBe(304);
    const unknown = await h.request('GET', '/ui/secrets.js');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'DROVER_NOT_FOUND', description: 'The dashboard has no file secrets.js.' });
    const traversal = await h.request('GET', '/ui/..%2Fpackage.json');
    expect(traversal.statusCode).toBe(400);
    expect(traversal.json().errors.join(' ')).toContain('params.file');
  });

  it('refuses the page and its files to a node certificate (users only)', async () => {
    h = await harness({ identify: headerIdentity });
    for (const url of ['/ui', '/ui/main.js']) {
      const answer = await h.request('GET', url, undefined, { 'x-test-identity': 'node:n1' });
      expect(answer.statusCode, url).toBe(403);
      expect(answer.json().code).toBe('DROVER_FORBIDDEN');
    }
  });
});

describe('cross-site writes', () => {
  it('refuses a write a browser sent from another site, before it changes anything', async () => {
    h = await harness();
    await h.request('POST', '/v1/drover/agents/report', report(1));
    const cordon = `/v1/drover/nodes/${nodeId(1)}/cordon`;
    for (const headers of [{ 'sec-fetch-site': 'cross-site' } as Record<string, string>, { 'sec-fetch-site': 'same-site' }, { origin: 'https://evil.example' }, { origin: 'null' }]) {
      const answer = await h.request('POST', cordon, undefined, headers);
      expect(answer.statusCode, JSON.stringify(headers)).toBe(403);
      expect(answer.json()).toMatchObject({ code: 'DROVER_FORBIDDEN' });
    }
    expect(h.control.desired.nodes.find((n) => n.uuid === nodeId(1))?.cordon).toBeUndefined();
  });

  it('lets the page itself (same origin) and clients that are not browsers write', async () => {
    h = await harness();
    await h.request('POST', '/v1/drover/agents/report', report(1));
    const base = `/v1/drover/nodes/${nodeId(1)}`;
    expect((await h.request('POST', `${base}/cordon`, undefined, { 'sec-fetch-site': 'same-origin', origin: 'https://127.0.0.1:4523', host: '127.0.0.1:4523' })).statusCode).toBe(200);
    expect((await h.request('POST', `${base}/uncordon`)).statusCode).toBe(200);
  });

  it('leaves reads alone and names why a write is refused', () => {
    expect(crossSiteReason('GET', { 'sec-fetch-site': 'cross-site' })).toBeNull();
    expect(crossSiteReason('POST', { origin: 'https://127.0.0.1:4523', host: '127.0.0.1:4523' })).toBeNull();
    expect(crossSiteReason('POST', { origin: 'https://127.0.0.2:4523', host: '127.0.0.1:4523' })).toBe('its Origin (https://127.0.0.2:4523) is not this service (127.0.0.1:4523)');
    expect(crossSiteReason('DELETE', { 'sec-fetch-site': 'cross-site' })).toBe('the browser sent it from another site (Sec-Fetch-Site: cross-site)');
  });
});

describe('GET /v1/drover/datasets', () => {
  it('answers each dataset with its applications and what each node holds: writable, bytes used, snapshot count and the newest', async () => {
    h = await harness();
    const snap = (name: string, createtxg: number) => ({ name, guid: String(createtxg), createtxg });
    await h.request('POST', '/v1/drover/agents/report', report(1, { datasets: [observedDataset(D, { used_bytes: 5_000_000, snapshots: [snap('drover-a', 5), snap('drover-b', 9)] })] }));
    await h.request('POST', '/v1/drover/agents/report', report(2, { datasets: [observedDataset(D, { writable: false, path: null, used_bytes: 4_000_000, snapshots: [snap('drover-a', 3)] })] }));
    await h.request('POST', '/v1/configuration/datasets', { dataset_id: D, primary: nodeId(1), metadata: { name: 'kv_data' } });
    await h.request('POST', '/v1/configuration/containers', { name: 'kv', image: 'registry.example/kv', node_uuid: nodeId(1), volumes: [{ dataset_id: D, mountpoint: '/data' }] });
    const answer = await h.request('GET', '/v1/drover/datasets');
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toEqual([
      {
        dataset_id: D,
        name: 'kv_data',
        primary: nodeId(1),
        maximum_size: null,
        deleted: false,
        replicas: [],
        applications: ['kv'],
        copies: [
          { node_uuid: nodeId(1), writable: true, used_bytes: 5_000_000, snapshots: 2, newest_snapshot: 'drover-b' },
          { node_uuid: nodeId(2), writable: false, used_bytes: 4_000_000, snapshots: 1, newest_snapshot: 'drover-a' },
        ],
      },
    ]);
  });
});

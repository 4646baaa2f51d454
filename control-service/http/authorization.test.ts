/**
 * Every route of the one route table, over real mutual TLS on 127.0.0.1 (docs/DESIGN.md
 * §23): no certificate, another CA's, or a revoked one is refused at the connection; a node
 * certificate on a user-only route gets 403 naming the rule; on a node route, a node acting
 * for another node (its report or replication report, view, lease, dataset, route ack, a migration it is no party
 * to) gets 403 naming the rule and nothing changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillPath, ROUTES, type NodeRule, type RouteKey, type RouteSpec } from '#common/api-routes.ts';
import { revoke } from '#common/cluster-ca.ts';
import { join } from 'node:path';
import type { Migration } from '#common/model.ts';
import { datasetId, nodeId, report } from '../testing/harness.ts';
import { tlsHarness, type TlsHarness } from '../testing/tls-harness.ts';

const [N1, N2, N3] = [nodeId(1), nodeId(2), nodeId(3)];
/** On node 2, mounted by `app`, which moves to node 3 (migration M: n1 is no party to it). */
const D2 = datasetId(2);
/** On node 2, leased by node 2. */
const D3 = datasetId(3);
let h: TlsHarness;
let M: Migration;

/** Path parameters that name things of node 2 and 3 (never node 1's). */
function pathOf(key: RouteKey): string {
  const spec: RouteSpec = ROUTES[key];
  const filled = fillPath(spec.path, { dataset_id: D3, uuid: N2, node_uuid: N2, id: M.id, name: 'app', era: 'era-2', file: 'main.js' });
  return key === 'routeAcks' ? `${filled}?version=0` : filled;
}

/** What node 1 tries on each node route: another node's thing (or, for `read`, a plain read that must work). */
const FOREIGN: Record<NodeRule, (key: RouteKey) => { path?: string; body?: unknown } | 'allowed'> = {
  read: () => 'allowed',
  'own-report': (key) => (key === 'replicationReport' ? { body: { uuid: N2, era: 'era-2', seq: 1, replication: [] } } : { body: report(2) }),
  // A well-formed file id (a sha-256), so that the route's own validation does not answer first.
  'own-view': (key) => (key === 'agentFile' ? { path: fillPath(ROUTES.agentFile.path, { node_uuid: N2, id: 'a'.repeat(64) }) } : {}),
  'route-table': () => ({ path: `/v1/drover/routes?node_uuid=${N2}` }),
  'own-route-ack': () => ({ body: { node_uuid: N2, version: 1 } }),
  'own-lease': (key) => (key === 'acquireLease' ? { body: { dataset_id: D3, node_uuid: N2, expires: null } } : {}),
  'dataset-on-itself': (key) => (key === 'createDataset' ? { body: { primary: N2 } } : key === 'moveDataset' ? { path: fillPath(ROUTES.moveDataset.path, { dataset_id: D3 }), body: { primary: N2 } } : {}),
  'migration-party': () => ({}),
  'migration-step': () => ({ body: { node_uuid: N1, generation: M.generation, phase: 'pre-copy' } }),
};

beforeAll(async () => {
  h = await tlsHarness();
  await revoke(join(h.dir, 'ca'), 'user/revoked');
  h.revoked.reload(true);
  // Each node joins with its own certificate: the first report binds it.
  for (const [i, caller] of [[1, 'n1'], [2, 'n2'], [3, 'n3']] as const) expect((await h.send(caller, 'POST', ROUTES.report.path, report(i))).status).toBe(200);
  const ok = async (method: string, path: string, body: unknown) => {
    const answer = await h.send('alice', method, path, body);
    expect(answer.status, JSON.stringify(answer.body)).toBeLessThan(300);
    return answer.body;
  };
  await ok('POST', '/v1/configuration/datasets', { primary: N2, dataset_id: D2 });
  await ok('POST', '/v1/configuration/datasets', { primary: N2, dataset_id: D3 });
  await ok('POST', '/v1/configuration/leases', { dataset_id: D3, node_uuid: N2, expires: null });
  await ok('POST', '/v1/configuration/containers', { name: 'app', image: 'registry.example/app', node_uuid: N2, volumes: [{ dataset_id: D2, mountpoint: '/data' }] });
  M = ((await ok('POST', '/v1/configuration/containers/app', { node_uuid: N3 })) as { migration: Migration }).migration;
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('authorization of every route of the route table, over mutual TLS', () => {
  it('binds each node certificate to the node it first reported as', () => {
    expect([h.control.nodeOfCertificate('n1'), h.control.nodeOfCertificate('n2'), h.control.nodeOfCertificate('n3')]).toEqual([N1, N2, N3]);
  });

  for (const key of Object.keys(ROUTES) as RouteKey[]) {
    const spec: RouteSpec = ROUTES[key];
    const name = `${spec.method} ${spec.path}`;

    it(`${name}: refused at the TLS handshake without a certificate, with another CA's, and with a revoked one`, async () => {
      const answers = await Promise.allSettled((['nobody', 'mallory', 'revoked'] as const).map((caller) => h.send(caller, spec.method, pathOf(key), spec.body ? {} : undefined)));
      expect(answers.map((a) => a.status)).toEqual(['rejected', 'rejected', 'rejected']);
    });

    const access = spec.access;
    if (access.role === 'user') {
      it(`${name}: a node certificate gets 403 naming the rule user-only, and nothing changes`, async () => {
        const before = h.control.snapshot.version;
        const answer = await h.send('n1', spec.method, pathOf(key), spec.body ? {} : undefined);
        expect(answer.status).toBe(403);
        expect(answer.body).toMatchObject({ code: 'DROVER_FORBIDDEN', description: expect.stringContaining('rule user-only') });
        expect(h.control.snapshot.version).toBe(before);
      });
    } else if (access.role === 'any') {
      it(`${name}: any certificate of the cluster may call it`, async () => {
        expect((await h.send('n1', spec.method, pathOf(key))).status).toBe(200);
      });
    } else {
      if (access.rule === 'read') {
        it(`${name}: a node may read it (rule ${access.rule})`, async () => {
          expect((await h.send('n1', spec.method, pathOf(key))).status).toBe(200);
        });
      } else {
        it(`${name}: node n1 acting for another node gets 403 naming the rule ${access.rule}, and nothing changes`, async () => {
          const before = h.control.snapshot.version;
          const node2 = JSON.stringify(h.control.desired.nodes.find((n) => n.uuid === N2));
          const attempt = FOREIGN[access.rule](key);
          if (attempt === 'allowed') throw new Error('unreachable');
          const answer = await h.send('n1', spec.method, attempt.path ?? pathOf(key), attempt.body);
          expect(answer.status, JSON.stringify(answer.body)).toBe(403);
          expect((answer.body as { description: string }).description).toContain(`rule ${access.rule}`);
          expect(h.control.snapshot.version).toBe(before);
          expect(JSON.stringify(h.control.desired.nodes.find((n) => n.uuid === N2))).toBe(node2);
        });
      }
    }
  }

  it('lets a user call a user-only route, and a node its own things: its report, view, lease, route ack, and the migration it is a party to', async () => {
    expect((await h.send('alice', 'GET', '/v1/drover/applications')).status).toBe(200);
    // A user reaches the logs route (no node runs `app` here: the route's own answer, not 403).
    expect(await h.send('alice', 'GET', '/v1/drover/applications/app/logs?tail=5')).toMatchObject({ status: 409, body: { code: 'DROVER_APPLICATION_NOT_RUNNING' } });
    expect((await h.send('n1', 'POST', ROUTES.report.path, report(1))).status).toBe(200);
    expect(await h.send('n1', 'POST', ROUTES.replicationReport.path, { uuid: N1, era: 'era-1', seq: 1, replication: [] })).toMatchObject({ status: 200, body: { merged: true } });
    expect((await h.send('n1', 'GET', `/v1/drover/agents/${N1}/desired`)).status).toBe(200);
    expect((await h.send('n1', 'GET', `/v1/drover/routes?node_uuid=${N1}`)).status).toBe(200);
    expect((await h.send('n1', 'POST', '/v1/drover/routes/ack', { node_uuid: N1, version: 0 })).status).toBe(200);
    expect((await h.send('n1', 'POST', '/v1/configuration/leases', { dataset_id: datasetId(9), node_uuid: N1, expires: 60 })).status).toBe(201);
    expect((await h.send('n1', 'DELETE', `/v1/configuration/leases/${datasetId(9)}`)).status).toBe(200);
    expect((await h.send('n2', 'GET', `/v1/drover/migrations/${M.id}`)).status).toBe(200);
    expect((await h.send('n3', 'GET', `/v1/drover/migrations/${M.id}`)).status).toBe(200);
  });

  it("refuses a migration step posted by its party as the other party (n2 posting as node 3)", async () => {
    const before = h.control.snapshot.version;
    const answer = await h.send('n2', 'POST', `/v1/drover/migrations/${M.id}/update`, { node_uuid: N3, generation: M.generation, phase: 'pre-copy' });
    expect(answer.status).toBe(403);
    expect((answer.body as { description: string }).description).toContain('rule migration-step');
    expect(h.control.snapshot.version).toBe(before);
  });

  it('lets a node create a dataset on itself, and names the mismatch when it reports as another node', async () => {
    expect((await h.send('n1', 'POST', '/v1/configuration/datasets', { primary: N1 })).status).toBe(201);
    expect((await h.send('n1', 'POST', ROUTES.report.path, report(2))).body).toMatchObject({ code: 'DROVER_NODE_IDENTITY_MISMATCH' });
  });

  it("gives a user the backup, naming the cluster by its CA certificate's fingerprint, and refuses a node's restore before reading it", async () => {
    const { X509Certificate, createHash } = await import('node:crypto');
    const answer = await h.send('alice', 'GET', '/v1/drover/backup');
    expect(answer.status).toBe(200);
    const ca = new X509Certificate(h.identity('alice').ca);
    expect((answer.body as { cluster: string }).cluster).toBe(`sha256:${createHash('sha256').update(ca.raw).digest('hex')}`);
    const before = h.control.snapshot.version;
    const refused = await h.send('n2', 'POST', '/v1/drover/restore', { backup: answer.body, force: true });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'DROVER_FORBIDDEN', description: expect.stringContaining('rule user-only') });
    expect(h.control.snapshot.version).toBe(before);
  });

  it('refuses a revoked certificate once the revoked list is reloaded, on a connection that was open before', async () => {
    const { tlsFetch } = await import('#common/tls-client.ts');
    const fetch = tlsFetch(h.identity('n3'));
    const call = () => fetch(`${h.url}/v1/version`, { method: 'GET', headers: {}, body: null, signal: null });
    expect((await call()).status).toBe(200);
    await revoke(join(h.dir, 'ca'), 'node/n3');
    h.revoked.reload(true);
    const answer = await call().then(async (r) => ({ status: r.status, body: await r.json() }), (err: unknown) => err);
    // Either the kept-alive connection is reused (403, rule revoked) or a new one is closed at the handshake.
    if (answer instanceof Error) expect(answer.message).toBe('fetch failed');
    else expect(answer).toMatchObject({ status: 403, body: { description: expect.stringContaining('revoked') } });
    await expect(h.send('n3', 'GET', '/v1/version')).rejects.toThrow();
  });
});

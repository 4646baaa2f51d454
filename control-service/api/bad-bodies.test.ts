/**
 * Every write endpoint, with the bad bodies of docs/DESIGN.md §11: a wrong type, an unknown field,
 * a bad UUID, an oversized body. Each is refused (400 naming the path, or 413) and the
 * configuration stays exactly as it was (same tag, same version).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetId, harness, nodeId, report, type Harness } from '../testing/harness.ts';

let h: Harness;
let migrationId = '';
beforeAll(async () => {
  h = await harness();
  await h.request('POST', '/v1/drover/agents/report', report(1));
  await h.request('POST', '/v1/drover/agents/report', report(2));
  await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
  await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'nginx', node_uuid: nodeId(1) });
  migrationId = (await h.request('POST', '/v1/drover/applications/web/move', { node_uuid: nodeId(2) })).json().migration.id;
});
afterAll(async () => h?.close());

const huge = 'x'.repeat(1024 * 1024 + 10);

const cases: [string, () => string, unknown, string][] = [
  ['POST datasets: wrong type', () => '/v1/configuration/datasets', { primary: nodeId(1), maximum_size: 'big' }, 'maximum_size'],
  ['POST datasets: unknown field', () => '/v1/configuration/datasets', { primary: nodeId(1), owner: 'me' }, 'owner'],
  ['POST datasets/<id>: bad UUID', () => `/v1/configuration/datasets/${datasetId(1)}`, { primary: 'n1' }, 'primary'],
  ['POST datasets/<id>: unknown field', () => `/v1/configuration/datasets/${datasetId(1)}`, { primary: nodeId(2), force: true }, 'force'],
  ['POST containers: wrong type', () => '/v1/configuration/containers', { name: 'x', image: 'y', cpu_shares: '5' }, 'cpu_shares'],
  ['POST containers: bad UUID', () => '/v1/configuration/containers', { name: 'x', image: 'y', node_uuid: nodeId(1).toUpperCase().replace(/0/g, 'A') }, 'node_uuid'],
  ['POST containers/<name>: unknown field', () => '/v1/configuration/containers/web', { node_uuid: nodeId(2), now: true }, 'now'],
  ['POST containers/<name>: bad name', () => '/v1/configuration/containers/-bad', { node_uuid: nodeId(2) }, 'params.name'],
  ['POST leases: wrong type', () => '/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: 'soon' }, 'expires'],
  ['POST deploy: wrong type', () => '/v1/drover/deploy', { project: 'p', compose: { file: 'c', text: 1 }, topology: { file: 't', text: '' } }, 'compose.text'],
  ['POST applications/<name>/move: bad UUID', () => '/v1/drover/applications/web/move', { node_uuid: '2' }, 'node_uuid'],
  ['POST migrations: unknown field', () => '/v1/drover/migrations', { application: 'web', to: nodeId(2), when: 'now' }, 'when'],
  ['POST migrations/<id>/update: wrong type', () => `/v1/drover/migrations/${migrationId}/update`, { node_uuid: nodeId(1), generation: 'g', phase: 'pre-copy' }, 'generation'],
  ['POST agents/report: bad UUID', () => '/v1/drover/agents/report', { ...report(1), uuid: 'node-1' }, 'uuid'],
  ['POST routes/ack: unknown field', () => '/v1/drover/routes/ack', { node_uuid: nodeId(1), version: 1, extra: 1 }, 'extra'],
];

describe('bad bodies on every write endpoint', () => {
  it.each(cases)('%s → 400 naming the path, nothing changed', async (_what, url, body, path) => {
    const before = h.control.snapshot;
    const answer = await h.request('POST', url(), body);
    expect(answer.statusCode, answer.body).toBe(400);
    expect(answer.json().errors).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^${path.replace('.', '\\.')}: `))]));
    expect(h.control.snapshot.tag).toBe(before.tag);
    expect(h.control.snapshot.version).toBe(before.version);
  });

  it.each([
    ['/v1/configuration/datasets', { primary: nodeId(1), metadata: { name: huge } }],
    ['/v1/configuration/containers', { name: 'big', image: huge }],
    ['/v1/configuration/leases', { dataset_id: datasetId(1), node_uuid: nodeId(1), expires: null, pad: huge }],
  ])('POST %s with a body over the limit → 413, nothing changed', async (url, body) => {
    const before = h.control.snapshot;
    const answer = await h.request('POST', url, body);
    expect(answer.statusCode).toBe(413);
    expect(answer.json().description).toMatch(/too large/i);
    expect(h.control.snapshot.tag).toBe(before.tag);
  });

  it('POST agents/report allows a large report (32 MiB) and refuses more with 413', async () => {
    const answer = await h.request('POST', '/v1/drover/agents/report', { ...report(1), era: 'x'.repeat(33 * 1024 * 1024) });
    expect(answer.statusCode).toBe(413);
  });

  it('POST deploy allows 16 MiB and refuses more with 413', async () => {
    const before = h.control.snapshot;
    const answer = await h.request('POST', '/v1/drover/deploy', { project: 'p', compose: { file: 'c.yml', text: 'x'.repeat(17 * 1024 * 1024) }, topology: { file: 't', text: '' } });
    expect(answer.statusCode).toBe(413);
    expect(h.control.snapshot.tag).toBe(before.tag);
  });

  it('DELETE with a malformed id → 400 naming the parameter', async () => {
    const answer = await h.request('DELETE', '/v1/configuration/leases/not-a-uuid');
    expect(answer.statusCode).toBe(400);
    expect(answer.json().errors).toEqual(['params.dataset_id: must be a lower-case UUID']);
  });

  it('GET with an unknown query parameter → 400 naming it', async () => {
    const answer = await h.request('GET', `/v1/drover/agents/${nodeId(1)}/desired?after=1&colour=red`);
    expect(answer.statusCode).toBe(400);
    expect(answer.json().errors).toEqual(['query.colour: unknown field']);
  });
});

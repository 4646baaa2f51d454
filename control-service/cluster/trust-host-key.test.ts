import { afterEach, describe, expect, it } from 'vitest';
import type { NodeReport } from '#common/model.ts';
import type { Recorded } from '../events/event-bus.ts';
import { harness, headerIdentity, nodeId, report, type Harness } from '../testing/harness.ts';
import { emptyDesired } from '../store/validate.ts';
import { nodeFromReport, trustHostKey } from './node-trust.ts';

const KEY_A = `SHA256:${'A'.repeat(43)}`;
const KEY_B = `SHA256:${'B'.repeat(43)}`;
const KEY_C = `SHA256:${'C'.repeat(43)}`;
const ssh = (i: number, key: string): Partial<NodeReport> => ({ transfer: { ssh: { host: `127.0.0.${10 + i}`, port: 22, user: 'root', host_key_fingerprint: key } } });
const as = (name: string) => ({ 'x-test-identity': `node:${name}` });
const operator = { 'x-test-identity': 'user:alice' };
const trustPath = (i: number) => `/v1/drover/nodes/${nodeId(i)}/trust-host-key`;

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

type StateNode = { uuid: string; problems?: Array<{ reason: string }>; host_key_accepted?: { fingerprint: string; previous: string; by: string } };

/** Nodes 1 and 2 joined with KEY_A; node 1, reinstalled, now reports KEY_B (refused, a problem). */
async function reinstalled(): Promise<{ h: Harness; events: Recorded[] }> {
  const world = await harness({ identify: headerIdentity });
  h = world;
  for (const i of [1, 2]) expect((await world.request('POST', '/v1/drover/agents/report', report(i, ssh(i, KEY_A)), as(`n${i}`))).statusCode).toBe(200);
  expect((await world.request('POST', '/v1/drover/agents/report', report(1, ssh(1, KEY_B)), as('n1'))).statusCode).toBe(200);
  const events: Recorded[] = [];
  world.control.events.subscribe((e) => events.push(e));
  return { h: world, events };
}

const stateOf = async (world: Harness, i: number): Promise<StateNode> => ((await world.request('GET', '/v1/state/nodes')).json() as StateNode[]).find((n) => n.uuid === nodeId(i))!;

describe('accepting a node\'s new ssh host key on purpose (drover node trust-host-key, docs/DESIGN.md §23)', () => {
  it('pins the key the reinstalled node reports, tells senders, clears its problem and says who accepted it', async () => {
    const { h: world, events } = await reinstalled();
    expect((await stateOf(world, 1)).problems?.map((p) => p.reason).join()).toContain('ssh host key change refused');

    const answer = await world.request('POST', trustPath(1), {}, operator);
    expect(answer.statusCode, answer.body).toBe(200);
    expect(answer.json()).toMatchObject({ uuid: nodeId(1), host_key_accepted: { fingerprint: KEY_B, previous: KEY_A, by: 'alice' } });

    expect(world.control.desired.nodes.find((n) => n.uuid === nodeId(1))!.transfer.ssh!.host_key_fingerprint).toBe(KEY_B);
    const view = (await world.request('GET', `/v1/drover/agents/${nodeId(2)}/desired`, undefined, as('n2'))).json() as { nodes: Array<{ uuid: string; transfer: { ssh?: { host_key_fingerprint: string } } }> };
    expect(view.nodes.find((n) => n.uuid === nodeId(1))!.transfer.ssh!.host_key_fingerprint).toBe(KEY_B);
    const state = await stateOf(world, 1);
    expect(state.problems ?? []).toEqual([]);
    expect(state.host_key_accepted).toMatchObject({ fingerprint: KEY_B, previous: KEY_A, by: 'alice' });
    const security = events.filter((e) => e.event.type === 'security').map((e) => e.event.data);
    expect(security).toEqual([expect.objectContaining({ uuid: nodeId(1), accepted: expect.objectContaining({ fingerprint: KEY_B }) })]);

    // The node's next reports agree with the pinned key: no new problem; the acceptance stays on record.
    await world.request('POST', '/v1/drover/agents/report', report(1, { labels: { after: 'reinstall' }, ...ssh(1, KEY_B) }), as('n1'));
    expect(events.filter((e) => e.event.type === 'security')).toHaveLength(1);
    expect((await stateOf(world, 1)).host_key_accepted?.fingerprint).toBe(KEY_B);
    expect(world.control.desired.nodes.find((n) => n.uuid === nodeId(1))!.labels).toEqual({ after: 'reinstall' });
  });

  it('accepts the fingerprint the operator checked on the node only when it is the one the node reports, changing nothing otherwise', async () => {
    const { h: world, events } = await reinstalled();
    const version = world.control.snapshot.version;
    const wrong = await world.request('POST', trustPath(1), { fingerprint: KEY_C }, operator);
    expect(wrong.statusCode).toBe(409);
    expect(wrong.json()).toMatchObject({ code: 'DROVER_HOST_KEY_MISMATCH', description: expect.stringContaining(KEY_B) });
    expect(world.control.snapshot.version).toBe(version);
    expect(world.control.desired.nodes.find((n) => n.uuid === nodeId(1))!.transfer.ssh!.host_key_fingerprint).toBe(KEY_A);
    expect((await stateOf(world, 1)).problems?.length).toBe(1);
    expect(events).toEqual([]);

    const right = await world.request('POST', trustPath(1), { fingerprint: KEY_B }, operator);
    expect(right.statusCode).toBe(200);
    expect(world.control.desired.nodes.find((n) => n.uuid === nodeId(1))!.transfer.ssh!.host_key_fingerprint).toBe(KEY_B);
  });

  it('refuses when there is nothing new to accept, a bad fingerprint naming the field, and an unknown node', async () => {
    const { h: world } = await reinstalled();
    const version = world.control.snapshot.version;
    const same = await world.request('POST', trustPath(2), {}, operator);
    expect(same.statusCode).toBe(409);
    expect(same.json()).toMatchObject({ code: 'DROVER_HOST_KEY_UNCHANGED', description: expect.stringContaining('reports the key it is pinned to') });
    const bad = await world.request('POST', trustPath(1), { fingerprint: 'MD5:aa:bb' }, operator);
    expect(bad.statusCode).toBe(400);
    expect(JSON.stringify(bad.json())).toContain('fingerprint');
    expect((await world.request('POST', trustPath(9), {}, operator)).statusCode).toBe(404);
    expect(world.control.snapshot.version).toBe(version);
  });

  it("refuses a node certificate, even the node's own: accepting a key is the operator's decision", async () => {
    const { h: world } = await reinstalled();
    const answer = await world.request('POST', trustPath(1), {}, as('n1'));
    expect(answer.statusCode).toBe(403);
    expect(answer.json()).toMatchObject({ code: 'DROVER_FORBIDDEN', description: expect.stringContaining('user-only') });
    expect(world.control.desired.nodes.find((n) => n.uuid === nodeId(1))!.transfer.ssh!.host_key_fingerprint).toBe(KEY_A);
  });

  it('pins a fingerprint given ahead of the reinstalled node\'s first report, and has no key to accept for a node without ssh', () => {
    const joined = nodeFromReport(report(1, ssh(1, KEY_A)), undefined, { role: 'node', name: 'n1' }, undefined).node;
    const desired = { ...emptyDesired(), nodes: [joined] };
    const ahead = trustHostKey(desired, { uuid: nodeId(1), claimed: KEY_A, fingerprint: KEY_B, by: 'alice', now: 5 });
    expect(ahead.desired.nodes[0]!.transfer.ssh!.host_key_fingerprint).toBe(KEY_B);
    expect(ahead.accepted).toEqual({ fingerprint: KEY_B, previous: KEY_A, by: 'alice', at: 5 });
    // The node's report with the accepted key keeps the record.
    expect(nodeFromReport(report(1, ssh(1, KEY_B)), ahead.desired.nodes[0], { role: 'node', name: 'n1' }, nodeId(1)).node.host_key_accepted).toEqual(ahead.accepted);
    expect(() => trustHostKey(desired, { uuid: nodeId(1), claimed: undefined, fingerprint: undefined, by: 'alice', now: 5 })).toThrow(expect.objectContaining({ code: 'DROVER_HOST_KEY_UNCHANGED', message: expect.stringContaining('--fingerprint') }));
    const tlsOnly = { ...desired, nodes: [nodeFromReport(report(1), undefined, { role: 'node', name: 'n1' }, undefined).node] };
    expect(() => trustHostKey(tlsOnly, { uuid: nodeId(1), claimed: undefined, fingerprint: KEY_B, by: 'alice', now: 5 })).toThrow(expect.objectContaining({ code: 'DROVER_HOST_KEY_UNCHANGED', message: expect.stringContaining('no ssh endpoint') }));
  });
});

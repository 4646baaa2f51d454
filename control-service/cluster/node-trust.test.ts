import { afterEach, describe, expect, it } from 'vitest';
import type { NodeReport } from '#common/model.ts';
import type { Recorded } from '../events/event-bus.ts';
import { harness, headerIdentity, nodeId, report, type Harness } from '../testing/harness.ts';
import { nodeFromReport } from './node-trust.ts';

const KEY_A = `SHA256:${'A'.repeat(43)}`;
const KEY_B = `SHA256:${'B'.repeat(43)}`;
const ssh = (i: number, key: string, host = `127.0.0.${10 + i}`): Partial<NodeReport> => ({ transfer: { ssh: { host, port: 22, user: 'root', host_key_fingerprint: key } } });

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const as = (name: string) => ({ 'x-test-identity': `node:${name}` });

describe('transfer trust: what a report may change of its node (docs/DESIGN.md §23)', () => {
  it('records the node certificate that first reported a uuid, and refuses that uuid to another node certificate', () => {
    const first = nodeFromReport(report(1), undefined, { role: 'node', name: 'n1' }, undefined).node;
    expect(first.identity).toEqual({ name: 'n1' });
    expect(() => nodeFromReport(report(1), first, { role: 'node', name: 'n2' }, undefined)).toThrow(expect.objectContaining({ code: 'DROVER_NODE_IDENTITY_MISMATCH' }));
    expect(() => nodeFromReport(report(2), undefined, { role: 'node', name: 'n1' }, nodeId(1))).toThrow(expect.objectContaining({ code: 'DROVER_NODE_IDENTITY_MISMATCH' }));
  });

  it('keeps the host key recorded at join when a later report claims another, and says which', () => {
    const joined = nodeFromReport(report(1, ssh(1, KEY_A)), undefined, { role: 'node', name: 'n1' }, undefined).node;
    const later = nodeFromReport(report(1, ssh(1, KEY_B)), joined, { role: 'node', name: 'n1' }, nodeId(1));
    expect(later.node.transfer.ssh?.host_key_fingerprint).toBe(KEY_A);
    expect(later.keyChangeRefused).toEqual({ recorded: KEY_A, claimed: KEY_B });
  });

  it('refuses a forged transfer target: the key stays pinned, an event and the node status say so, and every other node is sent the recorded key', async () => {
    h = await harness({ identify: headerIdentity });
    for (const i of [1, 2]) expect((await h.request('POST', '/v1/drover/agents/report', report(i, ssh(i, KEY_A)), as(`n${i}`))).statusCode).toBe(200);
    const events: Recorded[] = [];
    h.control.events.subscribe((e) => events.push(e));
    // Node 1 now claims its transfers go to another machine, with that machine's key.
    const forged = report(1, ssh(1, KEY_B, '127.0.0.99'));
    expect((await h.request('POST', '/v1/drover/agents/report', forged, as('n1'))).statusCode).toBe(200);
    const stored = h.control.desired.nodes.find((n) => n.uuid === nodeId(1))!;
    expect(stored.transfer.ssh?.host_key_fingerprint).toBe(KEY_A);
    // What a sender (node 2) is told about node 1: the recorded key, so ssh refuses the other machine.
    const view = (await h.request('GET', `/v1/drover/agents/${nodeId(2)}/desired`, undefined, as('n2'))).json() as { nodes: Array<{ uuid: string; transfer: { ssh?: { host_key_fingerprint: string } } }> };
    expect(view.nodes.find((n) => n.uuid === nodeId(1))!.transfer.ssh!.host_key_fingerprint).toBe(KEY_A);
    expect(events.filter((e) => e.event.type === 'security')).toHaveLength(1);
    expect(JSON.stringify(events.find((e) => e.event.type === 'security')!.event.data)).toContain(KEY_B);
    const nodes = (await h.request('GET', '/v1/state/nodes')).json() as Array<{ uuid: string; problems?: Array<{ reason: string }> }>;
    expect(nodes.find((n) => n.uuid === nodeId(1))!.problems!.map((p) => p.reason).join()).toContain('ssh host key change refused');
    // Said once per claimed key, not at every report.
    await h.request('POST', '/v1/drover/agents/report', forged, as('n1'));
    expect(events.filter((e) => e.event.type === 'security')).toHaveLength(1);
  });

  it("refuses node 2's report posted with node 1's certificate, keeping nothing of it", async () => {
    h = await harness({ identify: headerIdentity });
    for (const i of [1, 2]) await h.request('POST', '/v1/drover/agents/report', report(i, ssh(i, KEY_A)), as(`n${i}`));
    const before = JSON.stringify(h.control.desired.nodes);
    const answer = await h.request('POST', '/v1/drover/agents/report', report(2, { labels: { evil: 'yes' }, ...ssh(2, KEY_B) }), as('n1'));
    expect(answer.statusCode).toBe(403);
    expect(answer.json()).toMatchObject({ code: 'DROVER_NODE_IDENTITY_MISMATCH', description: expect.stringContaining('rule own-report') });
    expect(JSON.stringify(h.control.desired.nodes)).toBe(before);
    expect(h.control.observed.get(nodeId(2))!.report.labels).toEqual({});
  });
});

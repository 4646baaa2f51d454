import { afterEach, describe, expect, it } from 'vitest';
import { harness, nodeId, report, type Harness } from '../testing/harness.ts';

let h: Harness;
afterEach(async () => h?.close());

describe('agent channel', () => {
  it('registers a node from its first report and pushes its desired view', async () => {
    h = await harness();
    const answer = await h.request('POST', '/v1/drover/agents/report', report(1));
    expect(answer.statusCode).toBe(200);
    const version = answer.json().version;
    const desired = await h.request('GET', `/v1/drover/agents/${nodeId(1)}/desired`);
    expect(desired.json()).toMatchObject({ version, node: { uuid: nodeId(1), host: '127.0.0.11' }, datasets: [], applications: [] });
  });
});

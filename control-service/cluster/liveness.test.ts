import { afterEach, describe, expect, it } from 'vitest';
import { container, harness, nodeId, report, type Harness } from '../testing/harness.ts';

let h: Harness;
afterEach(async () => h?.close());

/** A control service with the default lease (10 s) and grace (30 s), node 1 running `web`, healthy. */
async function cluster(): Promise<Harness> {
  h = await harness({ nodeTimeoutMs: 10_000, nodeDownGraceMs: 30_000 });
  await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'nginx', node_uuid: nodeId(1) });
  await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('web', { health: 'healthy' })] }));
  return h;
}

const nodeState = async () => (await h.request('GET', '/v1/state/nodes')).json()[0];
const web = async () => (await h.request('GET', '/v1/drover/applications/web')).json();

describe('node liveness by lease', () => {
  it('keeps a node known while its reports renew the lease within the TTL', async () => {
    await cluster();
    h.clock.advance(10_000);
    expect(await nodeState()).toMatchObject({ state: 'known', silent_ms: 10_000 });
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('web', { health: 'healthy' })] }));
    h.clock.advance(9_000);
    expect(await nodeState()).toMatchObject({ state: 'known', silent_ms: 9_000 });
  });

  it('marks a node unknown when its lease lapses, and down after the grace', async () => {
    await cluster();
    h.clock.advance(10_001);
    expect(await nodeState()).toMatchObject({ state: 'unknown', silent_ms: 10_001 });
    h.clock.advance(30_000);
    expect(await nodeState()).toMatchObject({ state: 'down', silent_ms: 40_001 });
  });

  it('shows everything seen on a silent node as unknown, not as the last healthy', async () => {
    await cluster();
    expect(await web()).toMatchObject({ state: 'running', health: 'healthy', node_state: 'known' });
    h.clock.advance(10_001);
    expect(await web()).toMatchObject({ state: 'unknown', health: 'unknown', node_state: 'unknown', node_silent_ms: 10_001 });
    expect((await h.request('GET', '/v1/state/containers')).json()).toEqual([expect.objectContaining({ name: 'web', running: true, health: 'unknown', node_state: 'unknown' })]);
    h.clock.advance(60_000);
    expect(await web()).toMatchObject({ state: 'unknown', health: 'unknown', node_state: 'down', node_silent_ms: 70_001 });
  });

  it('announces each change once: unknown when the lease lapses, down after the grace, known when it reports again', async () => {
    await cluster();
    const states: string[] = [];
    h.control.events.subscribe(({ event }) => {
      if (event.type === 'node') states.push(event.data.state);
    });
    h.clock.advance(10_001);
    await h.control.tick();
    await h.control.tick();
    h.clock.advance(30_000);
    await h.control.tick();
    expect(h.control.observed.sweep()).toEqual({ unknown: [], down: [] });
    await h.request('POST', '/v1/drover/agents/report', report(1));
    expect(await nodeState()).toMatchObject({ state: 'known', silent_ms: 0 });
    expect(states).toEqual(['unknown', 'down', 'known']);
  });

  it('goes straight to down when a single sweep finds the node silent past the grace', async () => {
    await cluster();
    h.clock.advance(45_000);
    expect(h.control.observed.sweep()).toEqual({ unknown: [nodeId(1)], down: [nodeId(1)] });
  });
});

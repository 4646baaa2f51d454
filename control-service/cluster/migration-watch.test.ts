import { afterEach, describe, expect, it } from 'vitest';
import type { Migration, NodeProblem } from '#common/model.ts';
import { container, harness, nodeId, report, type Harness } from '../testing/harness.ts';

let h: Harness;
afterEach(async () => h?.close());

const deadlines = { stallMs: 120_000, handoffMs: 60_000 };

/** Nodes 1 and 2 reporting, `web` on node 1. */
async function cluster(): Promise<Harness> {
  h = await harness({ nodeTimeoutMs: 10_000, nodeDownGraceMs: 30_000, migrationDeadlines: deadlines });
  await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'drover/x:1', node_uuid: nodeId(1) });
  await both();
  return h;
}

/** Both nodes report; node 2 with its containers and problems. */
async function both(two: { containers?: ReturnType<typeof container>[]; problems?: NodeProblem[] } = {}): Promise<void> {
  await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('web')] }));
  await h.request('POST', '/v1/drover/agents/report', report(2, two));
}

async function move(): Promise<Migration> {
  const started = await h.request('POST', '/v1/drover/migrations', { application: 'web', to: nodeId(2) });
  expect(started.statusCode).toBe(201);
  return started.json();
}

async function step(m: Migration, phase: Migration['phase'], node = 1): Promise<void> {
  const res = await h.request('POST', `/v1/drover/migrations/${m.id}/update`, { node_uuid: nodeId(node), generation: m.generation, phase });
  expect(res.statusCode, res.body).toBe(200);
}

const record = async (m: Migration): Promise<Migration> => (await h.request('GET', `/v1/drover/migrations/${m.id}`)).json();
const web = async () => (await h.request('GET', '/v1/drover/applications/web')).json();

describe('a move whose node is silent', () => {
  it('is refused at once, naming the silent source and for how long', async () => {
    await cluster();
    h.clock.advance(12_000);
    await h.request('POST', '/v1/drover/agents/report', report(2));
    const refused = await h.request('POST', '/v1/drover/migrations', { application: 'web', to: nodeId(2) });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'DROVER_NODE_SILENT' });
    expect(refused.json().description).toBe('Cannot move web: the source node 127.0.0.11 has been silent for 12 s (unknown); its agent must report before a move can start.');
    expect(h.control.desired.migrations).toEqual([]);
  });

  it('is refused when the target is silent too', async () => {
    await cluster();
    h.clock.advance(50_000);
    await h.request('POST', '/v1/drover/agents/report', report(1));
    const refused = await h.request('POST', '/v1/drover/migrations', { application: 'web', to: nodeId(2) });
    expect(refused.json().description).toMatch(/the target node 127\.0\.0\.12 has been silent for 50 s \(down\)/);
  });
});

describe('drover migrations cancel', () => {
  it.each(['pending', 'pre-copy', 'cutover'] as const)('fails a move in %s with "cancelled by the operator"; the application stays on the source', async (phase) => {
    await cluster();
    const m = await move();
    if (phase !== 'pending') await step(m, 'pre-copy');
    if (phase === 'cutover') await step(m, 'cutover');
    const cancelled = await h.request('POST', `/v1/drover/migrations/${m.id}/cancel`);
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json()).toMatchObject({ phase: 'failed', error: 'cancelled by the operator' });
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(1));
    // The source's next step reads failed: it restores the application (phases.ts outcomeOf).
    const late = await h.request('POST', `/v1/drover/migrations/${m.id}/update`, { node_uuid: nodeId(1), generation: m.generation, phase: 'handoff' });
    expect(late.json()).toMatchObject({ code: 'DROVER_MIGRATION_BAD_TRANSITION' });
  });

  it('refuses after handoff, saying the target owns the application', async () => {
    await cluster();
    const m = await move();
    for (const p of ['pre-copy', 'cutover', 'handoff'] as const) await step(m, p);
    const refused = await h.request('POST', `/v1/drover/migrations/${m.id}/cancel`);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().description).toBe(`Migration ${m.id} cannot be given up: it handed off (phase handoff): node ${nodeId(2)} is primary now.`);
    expect((await record(m)).phase).toBe('handoff');
  });

  it('answers 404 for no such migration', async () => {
    await cluster();
    expect((await h.request('POST', '/v1/drover/migrations/cccccccc-0000-4000-8000-000000000009/cancel')).statusCode).toBe(404);
  });
});

describe('deadlines', () => {
  it('gives up a move that made no progress for the stall deadline, saying so', async () => {
    await cluster();
    const m = await move();
    await step(m, 'pre-copy');
    h.clock.advance(119_000);
    await both();
    await h.control.tick();
    expect((await record(m)).phase).toBe('pre-copy');
    h.clock.advance(2_000);
    await both();
    await h.control.tick();
    expect(await record(m)).toMatchObject({ phase: 'failed', error: 'no progress for 121 s in pre-copy' });
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(1));
    expect(await web()).toMatchObject({ migration: null, last_error: 'move to 127.0.0.12 failed: no progress for 121 s in pre-copy' });
  });

  it('gives up a pending move at once when its source goes down', async () => {
    await cluster();
    const m = await move();
    h.clock.advance(40_001);
    await h.request('POST', '/v1/drover/agents/report', report(2));
    await h.control.tick();
    expect(await record(m)).toMatchObject({ phase: 'failed', error: 'source node 127.0.0.11 is down (silent for 40 s)' });
  });

  it('rolls a handoff back to the source when the target cannot start the application, with the target\'s error', async () => {
    await cluster();
    const m = await move();
    for (const p of ['pre-copy', 'cutover', 'handoff'] as const) await step(m, p);
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(2));
    const problem: NodeProblem = { subject: 'container:drover-web', kind: 'failed', reason: 'start-container: image drover/x:1 not found' };
    await both({ problems: [problem] });
    expect(await web()).toMatchObject({ state: 'missing', last_error: 'start-container: image drover/x:1 not found on 127.0.0.12' });
    h.clock.advance(61_000);
    await both({ problems: [problem] });
    await h.control.tick();
    expect(await record(m)).toMatchObject({
      phase: 'failed',
      error: 'rolled back: target node 127.0.0.12 did not make web ready within 60 s (start-container: image drover/x:1 not found)',
    });
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(1));
    const late = await h.request('POST', `/v1/drover/migrations/${m.id}/update`, { node_uuid: nodeId(2), generation: m.generation, phase: 'release' });
    expect(late.statusCode).toBe(409);
  });

  it('waits for a target whose application of this move runs healthy: it is about to post release', async () => {
    await cluster();
    const m = await move();
    for (const p of ['pre-copy', 'cutover', 'handoff'] as const) await step(m, p);
    h.clock.advance(61_000);
    await both({ containers: [container('web', { generation: m.generation, health: 'healthy' })] });
    await h.control.tick();
    expect((await record(m)).phase).toBe('handoff');
    // A container left from an earlier stay (another generation) does not count.
    await both({ containers: [container('web', { generation: m.generation - 1, health: 'healthy' })] });
    await h.control.tick();
    expect(await record(m)).toMatchObject({ phase: 'failed', error: expect.stringMatching(/did not make web ready/) });
  });

  it('waits for a target that is only unknown, and rolls back once it is down', async () => {
    await cluster();
    const m = await move();
    for (const p of ['pre-copy', 'cutover', 'handoff'] as const) await step(m, p);
    h.clock.advance(40_000);
    await both();
    h.clock.advance(21_000);
    await h.request('POST', '/v1/drover/agents/report', report(1));
    await h.control.tick();
    expect((await record(m)).phase).toBe('handoff');
    h.clock.advance(20_000);
    await h.control.tick();
    expect(await record(m)).toMatchObject({ phase: 'failed', error: 'rolled back: target node 127.0.0.12 is down (silent for 41 s)' });
    expect(h.control.desired.applications[0]!.node_uuid).toBe(nodeId(1));
  });

  it('never touches a move past release', async () => {
    await cluster();
    const m = await move();
    for (const p of ['pre-copy', 'cutover', 'handoff'] as const) await step(m, p);
    await step(m, 'release', 2);
    h.clock.advance(600_000);
    await h.control.tick();
    expect((await record(m)).phase).toBe('release');
  });
});

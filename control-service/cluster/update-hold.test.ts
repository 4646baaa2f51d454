import { afterEach, describe, expect, it } from 'vitest';
import type { Application } from '#common/model.ts';
import type { Route, RouteTable } from '#common/channel.ts';
import { container, harness, nodeId, report, type Harness } from '../testing/harness.ts';

// A single application's update holds its connections as a move does (docs/DESIGN.md §30,
// "Updating a single application"): the control service's side, through the API and agent
// reports on an in-memory store with a hand-driven clock.
let h: Harness;
afterEach(async () => h?.close());

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};
const compose = (version: string, extra = '') => `services:
  cache:
    image: drover/redis:7
    environment: { VERSION: "${version}" }
    ports: ["16379:6379"]
${extra}`;
const deploy = (text: string, project = 'p') =>
  h.request('POST', '/v1/drover/deploy', { project, compose: { file: 'compose.yml', text }, topology: { file: 'topology.yml', text: project === 'p' ? 'version: 1\nnodes:\n  "127.0.0.11": [cache]\n' : 'version: 1\nnodes: {}\n' } });
const app = (): Application => h.control.desired.applications.find((a) => a.name === 'cache')!;
const routes = async (): Promise<RouteTable> => (await h.request('GET', '/v1/drover/routes')).json();
const published = [{ internal: 6379, host: '127.0.0.11', host_port: 32001 }];
const ack = async (i: number, version: number) => h.request('POST', '/v1/drover/routes/ack', { node_uuid: nodeId(i), version });

/** Node 1 runs `cache` (v1), node 2's proxy is live; returns once its route forwards. */
async function running(): Promise<Route> {
  h = await harness();
  for (const i of [1, 2]) await h.request('POST', '/v1/drover/agents/report', report(i));
  const first = await deploy(compose('v1'));
  expect(first.statusCode, first.body).toBe(200);
  await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('cache', { published })] }));
  const table = await routes();
  await ack(2, table.version);
  expect(table.routes[0]).toMatchObject({ hold: false, target: { port: 32001 } });
  return table.routes[0]!;
}

describe('the update hold of a single application', () => {
  it('holds its route from the write that changes its environment until the new container runs, and lets the agent stop the old one once every live proxy applied the hold', async () => {
    await running();
    expect((await deploy(compose('v2'))).statusCode).toBe(200);
    const hold = app().update_hold!;
    expect(hold).toMatchObject({ held_at: null });
    expect(app().environment).toEqual({ VERSION: 'v2' });
    const held = await routes();
    // Held, the old target kept for information, the update's id as the proxies' correlation id.
    expect(held.routes[0]).toMatchObject({ hold: true, target: { port: 32001 }, migration: hold.id });
    // The agent's view carries the hold: it waits for held_at before stopping the old container.
    expect((await h.request('GET', `/v1/drover/agents/${nodeId(1)}/desired`)).json().applications[0].update_hold).toMatchObject({ id: hold.id, held_at: null });

    h.clock.advance(40);
    await ack(2, held.version);
    await settle();
    expect(app().update_hold).toMatchObject({ id: hold.id, held_at: h.clock.now() });
    expect((await routes()).routes[0]).toMatchObject({ hold: true });

    // The old container gone: still held (no target). The new one running but reported without the update: still held.
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [] }));
    expect((await routes()).routes[0]).toMatchObject({ hold: true, target: null });
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('cache', { published: [{ ...published[0]!, host_port: 32002 }] })] }));
    expect((await routes()).routes[0]).toMatchObject({ hold: true });
    // The agent reports the container running the update's spec: the route forwards to it, the hold ends.
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('cache', { update: hold.id, published: [{ ...published[0]!, host_port: 32002 }] })] }));
    await settle();
    const released = await routes();
    expect(released.routes[0]).toMatchObject({ hold: false, target: { port: 32002 } });
    // The record stays, released: the route keeps the update's id, which the proxies' release records carry.
    expect(released.routes[0]!.migration).toBe(hold.id);
    expect(app().update_hold).toMatchObject({ id: hold.id, released_at: h.clock.now(), ended: 'ready' });
  });

  it('lets the agent stop the old container after 5 s, naming the live proxy that did not acknowledge the hold', async () => {
    await running();
    await deploy(compose('v2'));
    h.clock.advance(4_900);
    await h.control.tick();
    await settle();
    expect(app().update_hold!.held_at).toBeNull();
    h.clock.advance(200);
    await h.control.tick();
    await settle();
    const hold = app().update_hold!;
    expect(hold.unacked).toEqual([nodeId(2)]);
    expect(hold.held_at! - hold.started_at).toBeGreaterThanOrEqual(5_000);
    expect(hold.held_at! - hold.started_at).toBeLessThanOrEqual(5_100);
  });

  it('waits for a passing health check when the application has one', async () => {
    await running();
    await deploy(compose('v2', '    x-drover-healthcheck: { type: tcp, port: 6379 }\n'));
    const hold = app().update_hold!;
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('cache', { update: hold.id, health: 'starting', published })] }));
    await settle();
    expect((await routes()).routes[0]).toMatchObject({ hold: true });
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('cache', { update: hold.id, health: 'healthy', published })] }));
    await settle();
    expect((await routes()).routes[0]).toMatchObject({ hold: false });
    expect(app().update_hold).toMatchObject({ ended: 'ready' });
  });

  it('keeps the hold across a redeploy of the same file, and starts a new one for a further change', async () => {
    await running();
    await deploy(compose('v2'));
    const first = app().update_hold!;
    const again = (await deploy(compose('v2'))).json();
    expect(app().update_hold).toEqual(first);
    expect(again.diff.changed).toEqual([]);
    await deploy(compose('v3'));
    expect(app().update_hold!.id).not.toBe(first.id);
  });

  it('ends the hold at the move\'s handoff deadline when the new container never becomes ready', async () => {
    await running();
    await deploy(compose('v2'));
    await h.request('POST', '/v1/drover/agents/report', report(2));
    h.clock.advance(119_000);
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('cache', { running: false, published: [] })] }));
    await h.control.tick();
    await settle();
    expect(app().update_hold!.released_at).toBeUndefined();
    h.clock.advance(1_500);
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('cache', { running: false, published: [] })] }));
    await h.control.tick();
    await settle();
    expect(app().update_hold).toMatchObject({ ended: 'deadline' });
    // No container running: no target, so proxies hold each new connection up to their own deadline, as for any stopped application.
    expect((await routes()).routes[0]).toMatchObject({ hold: false, target: null });
  });

  it('sets no hold for a move, a change of an application with several instances, or one without ports', async () => {
    await running();
    // Another project: the services of cache's own project are its peers, part of its container (a change there replaces it).
    const text = (v: string) => `services:
  web:
    image: drover/busybox:1
    environment: { VERSION: "${v}" }
    ports: ["18080:8080"]
    deploy: { replicas: 2 }
`;
    expect((await deploy(text('v1'), 'q')).statusCode).toBe(200);
    expect((await deploy(text('v2'), 'q')).statusCode).toBe(200);
    expect(h.control.desired.applications.find((a) => a.name === 'web')?.environment).toEqual({ VERSION: 'v2' });
    // Created through Flocker's API: no ports, no name, nothing the proxies serve.
    expect((await h.request('POST', '/v1/configuration/containers', { name: 'worker', image: 'drover/busybox:1', node_uuid: nodeId(1) })).statusCode).toBe(201);
    await h.control.change((d) => ({ ...d, applications: d.applications.map((a) => (a.name === 'worker' ? { ...a, environment: { VERSION: 'v2' } } : a)) }));
    expect(h.control.desired.applications.find((a) => a.name === 'worker')?.environment).toEqual({ VERSION: 'v2' });
    expect(h.control.desired.applications.filter((a) => a.update_hold !== undefined)).toEqual([]);
    const moved = await h.request('POST', '/v1/configuration/containers/cache', { node_uuid: nodeId(2) });
    expect(moved.statusCode).toBe(200);
    expect(app().update_hold).toBeUndefined();
  });
});

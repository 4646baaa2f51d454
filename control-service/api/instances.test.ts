import { afterEach, describe, expect, it } from 'vitest';
import { container, harness, nodeId, report, type Harness } from '../testing/harness.ts';

// Several instances (docs/DESIGN.md §30) through the API: placed on written, each in its node's
// agent view as an application `web.<id>`, balanced routes, status per instance, scale down
// drained before the instance leaves the views.
let h: Harness;
afterEach(async () => h?.close());

const web = (instances: number) => ({ name: 'web', image: 'registry.example/httpd:1', ports: [{ internal: 80, external: 8080 }], instances });
const desiredOf = async (i: number) => (await h.request('GET', `/v1/drover/agents/${nodeId(i)}/desired`)).json() as { applications: { name: string; node_uuid: string; restart_policy: { name: string } }[] };
const routes = async () => (await h.request('GET', '/v1/drover/routes')).json() as { routes: { external_port: number; targets?: { port: number }[] }[] };

describe('an application with several instances, through the API', () => {
  it('is placed one instance per node, each in its node\'s view as web.<id>, restarted always', async () => {
    h = await harness();
    for (const i of [1, 2, 3]) await h.request('POST', '/v1/drover/agents/report', report(i));
    expect((await h.request('POST', '/v1/configuration/containers', web(3))).statusCode).toBe(201);
    const views = await Promise.all([1, 2, 3].map(desiredOf));
    const names = views.map((v) => v.applications.map((a) => a.name));
    expect(names.flat().sort()).toEqual(['web.1', 'web.2', 'web.3']);
    for (const [k, v] of views.entries()) {
      expect(v.applications).toHaveLength(1);
      expect(v.applications[0]).toMatchObject({ node_uuid: nodeId(k + 1), restart_policy: { name: 'always' } });
    }
  });

  it('routes to every running instance and reports each in status; scaling down drains the newest first', async () => {
    h = await harness();
    for (const i of [1, 2]) await h.request('POST', '/v1/drover/agents/report', report(i));
    await h.request('POST', '/v1/configuration/containers', web(2));
    for (const i of [1, 2]) {
      const name = (await desiredOf(i)).applications[0]!.name;
      await h.request('POST', '/v1/drover/agents/report', report(i, { containers: [container(name, { published: [{ internal: 80, host: `127.0.0.1${i}`, host_port: 32000 + i }] })] }));
    }
    expect((await routes()).routes[0]!.targets!.map((t) => t.port).sort()).toEqual([32001, 32002]);
    const status = (await h.request('GET', '/v1/drover/applications/web')).json();
    expect(status).toMatchObject({ state: 'running', node_uuid: null });
    expect(status.instances.map((i: { id: number; state: string; draining: boolean }) => [i.id, i.state, i.draining])).toEqual([[1, 'running', false], [2, 'running', false]]);

    // A deploy (or a write of the configuration) changes the number: here the same write a deploy makes.
    await h.control.change((d) => ({ ...d, applications: d.applications.map((a) => (a.name === 'web' ? { ...a, instances: 1 } : a)) }));
    const draining = (await h.request('GET', '/v1/drover/applications/web')).json().instances;
    expect(draining.map((i: { id: number; draining: boolean }) => [i.id, i.draining])).toEqual([[1, false], [2, true]]);
    // Out of the route at once; still in its node's view (running) until drained.
    expect((await routes()).routes[0]!.targets!.map((t) => t.port)).toEqual([32001]);
  });

  it('says in status why an instance is not running: held back for a dependency, or exiting', async () => {
    h = await harness();
    await h.request('POST', '/v1/drover/agents/report', report(1));
    await h.request('POST', '/v1/configuration/containers', web(1));
    const waiting = { subject: 'container:drover-web.1', kind: 'blocked', reason: 'waiting for "cache" to be healthy (depends_on: service_healthy)' } as const;
    await h.request('POST', '/v1/drover/agents/report', report(1, { problems: [waiting] }));
    expect((await h.request('GET', '/v1/drover/applications/web')).json()).toMatchObject({ state: 'missing', waiting: waiting.reason, last_error: null });
    const crashing = { subject: 'container:drover-web.1', kind: 'blocked', reason: 'exited with code 2; restarting after backoff' } as const;
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('web.1', { running: false })], problems: [crashing] }));
    expect((await h.request('GET', '/v1/drover/applications/web')).json()).toMatchObject({ state: 'missing', last_error: 'exited with code 2; restarting after backoff on 127.0.0.11' });
  });

  it('refuses several instances of an application with a dataset, naming the field', async () => {
    h = await harness();
    await h.request('POST', '/v1/drover/agents/report', report(1));
    const dataset = (await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1) })).json();
    const r = await h.request('POST', '/v1/configuration/containers', { ...web(2), volumes: [{ dataset_id: dataset.dataset_id, mountpoint: '/data' }] });
    expect(r.statusCode).toBe(400);
    expect(r.body).toMatch(/instances.*an application with a dataset runs as one instance/);
  });

  it('changes the number alone through PUT /instances: 2 → 3 places one more on the same revision; a bad number, a global or unknown application is refused naming instances, nothing changed', async () => {
    h = await harness();
    for (const i of [1, 2, 3]) await h.request('POST', '/v1/drover/agents/report', report(i));
    await h.request('POST', '/v1/configuration/containers', web(2));
    await h.request('POST', '/v1/configuration/containers', { name: 'probe', image: 'registry.example/probe:1', mode: 'global' });
    const before = (await h.request('GET', '/v1/configuration/containers')).json();
    for (const body of [{ instances: -1 }, { instances: 1.5 }, { instances: '3' }, { instances: 300 }, {}, { instances: 3, image: 'x' }]) {
      const r = await h.request('PUT', '/v1/drover/applications/web/instances', body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.body).toMatch(/instances|image/);
    }
    const global = await h.request('PUT', '/v1/drover/applications/probe/instances', { instances: 2 });
    expect(global.statusCode).toBe(400);
    expect(global.json().detail.issues).toEqual([{ path: 'instances', message: expect.stringContaining('a global application runs one instance on every matching node') }]);
    expect((await h.request('PUT', '/v1/drover/applications/nope/instances', { instances: 2 })).statusCode).toBe(404);
    expect((await h.request('GET', '/v1/configuration/containers')).json()).toEqual(before);

    const r = await h.request('PUT', '/v1/drover/applications/web/instances', { instances: 3 });
    expect(r.statusCode).toBe(200);
    expect(r.json().instances.map((i: { id: number; revision: number }) => [i.id, i.revision])).toEqual([[1, 0], [2, 0], [3, 0]]);
    expect((await desiredOf(3)).applications.map((a) => a.name)).toContain('web.3');
  });
});

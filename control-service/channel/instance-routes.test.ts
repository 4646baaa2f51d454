import { describe, expect, it } from 'vitest';
import type { Application, ObservedContainer } from '#common/model.ts';
import { validateDesired } from '../store/validate.ts';
import { computeRoutes, routesJson } from './route-table.ts';

const n = (i: number) => `00000001-0000-4000-8000-${String(i).padStart(12, '0')}`;
const web = (placed: { id: number; node: number; draining?: boolean }[], extra: Partial<Application> = {}) =>
  ({
    name: 'web',
    image: 'x',
    ports: [{ internal: 80, external: 8080 }],
    instances: placed.length,
    placed: placed.map((p) => ({ id: p.id, node_uuid: n(p.node), revision: 0, ...(p.draining ? { draining_since: 1 } : {}) })),
    ...extra,
  }) as Application;
const seen = (name: string, node: number, port: number, extra: Partial<ObservedContainer> = {}): ObservedContainer => ({
  name,
  image: 'x',
  running: true,
  health: 'unknown',
  restart_count: 0,
  published: [{ internal: 80, host: `127.0.0.1${node}`, host_port: port }],
  generation: 0,
  ...extra,
});
const doc = (apps: Application[]) => validateDesired({ nodes: [1, 2, 3].map((i) => ({ uuid: n(i), host: `127.0.0.1${i}` })), applications: apps });

describe('routes of an application with several instances', () => {
  it('lead to every ready instance, never hold, and leave out draining, stopped and unhealthy ones', () => {
    const containers = new Map([
      [`${n(1)}/web.1`, seen('web.1', 1, 32001)],
      [`${n(2)}/web.2`, seen('web.2', 2, 32002)],
      [`${n(3)}/web.3`, seen('web.3', 3, 32003, { running: false })],
      [`${n(1)}/web.4`, seen('web.4', 1, 32004)],
      [`${n(2)}/web.5`, seen('web.5', 2, 32005, { health: 'unhealthy' })],
    ]);
    const app = web([{ id: 1, node: 1 }, { id: 2, node: 2 }, { id: 3, node: 3 }, { id: 4, node: 1, draining: true }, { id: 5, node: 2 }], { health_check: { type: 'tcp', port: 80, initial_delay_seconds: 0, period_seconds: 1, timeout_seconds: 1, failure_threshold: 1 } });
    const healthy = new Map([...containers].map(([k, c]) => [k, c.name === 'web.5' ? c : { ...c, health: 'healthy' as const }]));
    const [route] = computeRoutes(doc([app]), (node, name) => healthy.get(`${node}/${name}`));
    expect(route).toMatchObject({ external_port: 8080, hold: false, target: { host: '127.0.0.11', port: 32001, node_uuid: n(1) } });
    expect(route!.targets).toEqual([
      { host: '127.0.0.11', port: 32001, node_uuid: n(1) },
      { host: '127.0.0.12', port: 32002, node_uuid: n(2) },
    ]);
  });

  it('have no target while no instance is ready, and give the same table as JSON', () => {
    const desired = doc([web([{ id: 1, node: 1 }])]);
    const routes = computeRoutes(desired, () => undefined);
    expect(routes).toEqual([{ application: 'web', external_port: 8080, target: null, targets: [], hold: false, generation: 0 }]);
    expect(JSON.parse(routesJson(desired, () => undefined))).toEqual(routes);
  });
});

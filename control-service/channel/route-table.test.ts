import { describe, expect, it } from 'vitest';
import type { Application, Desired, Migration, ObservedContainer } from '#common/model.ts';
import { validateDesired } from '../store/validate.ts';
import { LearnedPorts, computeRoutes, routesJson } from './route-table.ts';

const n = (i: number) => `00000001-0000-4000-8000-${String(i).padStart(12, '0')}`;
const app = (name: string, node: number, external: number, extra: Partial<Application> = {}) =>
  ({ name, node_uuid: n(node), image: 'x', ports: [{ internal: 80, external }], ...extra }) as Application;
const seen = (name: string, port: number, extra: Partial<ObservedContainer> = {}): ObservedContainer => ({
  name,
  image: 'x',
  running: true,
  health: 'unknown',
  restart_count: 0,
  published: [{ internal: 80, host: '127.0.0.11', host_port: port }],
  generation: 0,
  ...extra,
});
const migration = (application: string, phase: Migration['phase'], generation: number): Migration => ({
  id: `0000000e-0000-4000-8000-${String(generation).padStart(12, '0')}`,
  application,
  dataset_ids: [],
  from: n(1),
  to: n(2),
  phase,
  generation,
  round: 0,
  bytes_sent: 0,
  bytes_total: null,
  rate_bytes_per_second: null,
  started_at: 0,
  updated_at: 0,
  cutover_started_at: null,
  cutover_ms: null,
  error: null,
});
const doc = (applications: Application[], migrations: Migration[] = []): Desired => validateDesired({ applications, migrations });

describe('route table', () => {
  it('leads to the published host port of the node the application runs on', () => {
    const desired = doc([app('web', 1, 8080), app('db', 2, 5432), { ...app('quiet', 1, 1), ports: [] }]);
    const containers = new Map([[`${n(1)}/web`, seen('web', 32001)]]);
    expect(computeRoutes(desired, (node, name) => containers.get(`${node}/${name}`))).toEqual([
      { application: 'web', external_port: 8080, target: { host: '127.0.0.11', port: 32001, node_uuid: n(1) }, hold: false, generation: 0 },
      { application: 'db', external_port: 5432, target: null, hold: false, generation: 0 },
    ]);
  });

  it('holds in cutover, and in handoff until the application is healthy where it runs', () => {
    const withCheck = { health_check: { type: 'tcp', port: 80, initial_delay_seconds: 0, period_seconds: 1, timeout_seconds: 1, failure_threshold: 1 } } as Partial<Application>;
    const cutover = doc([app('web', 1, 8080, withCheck)], [migration('web', 'cutover', 7)]);
    expect(computeRoutes(cutover, () => seen('web', 1))[0]).toMatchObject({ hold: true, generation: 7 });
    const handoff = doc([app('web', 2, 8080, withCheck)], [migration('web', 'handoff', 7)]);
    expect(computeRoutes(handoff, () => seen('web', 2, { health: 'starting' }))[0]!.hold).toBe(true);
    expect(computeRoutes(handoff, () => seen('web', 2, { health: 'healthy' }))[0]!.hold).toBe(false);
  });

  it('gives the same text as serializing the table, before and after a change', () => {
    const containers = new Map([[`${n(1)}/a`, seen('a', 1)], [`${n(1)}/b`, seen('b', 2)]]);
    const lookup = (node: string, name: string) => containers.get(`${node}/${name}`);
    const first = doc([app('a', 1, 81), app('b', 1, 82)]);
    expect(routesJson(first, lookup)).toBe(JSON.stringify(computeRoutes(first, lookup)));
    const moving = validateDesired({ ...first, migrations: [migration('b', 'cutover', 3)] });
    expect(routesJson(moving, lookup)).toBe(JSON.stringify(computeRoutes(moving, lookup)));
    containers.set(`${n(1)}/a`, seen('a', 9));
    expect(routesJson(moving, lookup)).toBe(JSON.stringify(computeRoutes(moving, lookup)));
  });

  it('routes UDP and host-address ports to the port published for that protocol', () => {
    const dns = app('dns', 1, 53, { ports: [{ internal: 53, external: 53 }, { internal: 53, external: 53, protocol: 'udp' }, { internal: 9153, external: 9153, host_ip: '127.0.0.1' }] });
    const published = [
      { internal: 53, host: '127.0.0.11', host_port: 40001 },
      { internal: 53, host: '127.0.0.11', host_port: 40002, protocol: 'udp' as const },
      { internal: 9153, host: '127.0.0.11', host_port: 40003 },
    ];
    const routes = computeRoutes(doc([dns]), () => seen('dns', 0, { published }));
    expect(routes.map((r) => [r.external_port, r.protocol, r.host_ip, r.target?.port])).toEqual([
      [53, undefined, undefined, 40001],
      [53, 'udp', undefined, 40002],
      [9153, undefined, '127.0.0.1', 40003],
    ]);
  });

  it('adds a name route per published or exposed container port of an application with a name slot, held with the others', () => {
    const db = app('db', 1, 15432, { ports: [{ internal: 5432, external: 15432 }], expose: [{ internal: 5432 }, { internal: 9187 }], name_slot: 4 });
    const routes = computeRoutes(doc([db], [migration('db', 'cutover', 2)]), () => seen('db', 0, { published: [{ internal: 5432, host: '127.0.0.11', host_port: 40010 }] }));
    expect(routes.map((r) => [r.external_port, r.name_slot, r.target?.port ?? null, r.hold])).toEqual([
      [15432, undefined, 40010, true],
      [5432, 4, 40010, true],
      [9187, 4, null, true],
    ]);
    // Exposed only: name routes and no published port on the node's address.
    const cache = app('cache', 1, 1, { ports: [], expose: [{ internal: 6379 }], name_slot: 5 });
    expect(computeRoutes(doc([cache]), () => undefined)).toEqual([{ application: 'cache', external_port: 6379, target: null, hold: false, generation: 0, name_slot: 5 }]);
  });

  it("learns the ports a named application's container publishes (its image's EXPOSE) and keeps them while it moves", () => {
    const learned = new LearnedPorts();
    const db = app('db', 1, 1, { ports: [], name_slot: 3 });
    const running = seen('db', 0, { published: [{ internal: 6379, host: '127.0.0.11', host_port: 40020 }] });
    expect(computeRoutes(doc([db]), () => undefined, learned)).toEqual([]);
    expect(computeRoutes(doc([db]), () => running, learned)).toEqual([
      { application: 'db', external_port: 6379, target: { host: '127.0.0.11', port: 40020, node_uuid: n(1) }, hold: false, generation: 0, name_slot: 3 },
    ]);
    // Handoff: the target has no container yet; the name route stays, held, with no target.
    const handoff = doc([{ ...db, node_uuid: n(2) }], [migration('db', 'handoff', 4)]);
    expect(computeRoutes(handoff, () => undefined, learned)).toEqual([{ application: 'db', external_port: 6379, target: null, hold: true, generation: 4, migration: handoff.migrations[0]!.id, name_slot: 3 }]);
    expect(routesJson(handoff, () => undefined, learned)).toBe(JSON.stringify(computeRoutes(handoff, () => undefined, learned)));
    // Another image starts afresh.
    expect(computeRoutes(doc([{ ...db, image: 'y' }]), () => undefined, learned)).toEqual([]);
  });
});

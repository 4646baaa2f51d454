import { describe, expect, it } from 'vitest';
import type { Route } from '#common/channel.ts';
import { parseServiceSubnet } from '#common/service-subnet.ts';
import { dnatRules, listenOf, planRoutes, type ProxyPlace } from './route-plan.ts';

const T = { host: '127.0.0.12', port: 8080, node_uuid: '00000000-0000-4000-8000-000000000002' };
const r = (application: string, port: number, hold = false, target: Route['target'] = T, extra: Partial<Route> = {}): Route => ({ application, external_port: port, target, hold, generation: 0, ...extra });
const PLACE: ProxyPlace = { listenHost: '127.0.0.11', serviceSubnet: parseServiceSubnet('10.213.0.0/24') };
const key = (port: number, host = '127.0.0.11', proto = 'tcp') => `${proto} ${host}:${port}`;

describe('planRoutes', () => {
  it('opens new ports, closes vanished ones and updates the rest', () => {
    const current = new Map([
      [key(80), r('web', 80)],
      [key(5432), r('db', 5432)],
    ]);
    const plan = planRoutes(current, { version: 2, routes: [r('web', 80, true), r('cache', 6379)] }, PLACE);
    expect(plan.open.map((x) => x.listen.key)).toEqual([key(6379)]);
    expect(plan.close).toEqual([key(5432)]);
    expect(plan.update).toEqual([{ key: key(80), route: r('web', 80, true) }]);
    expect(plan.blocked).toEqual([]);
  });

  it('is idempotent: the same table twice opens and closes nothing the second time', () => {
    const table = { version: 1, routes: [r('web', 80), r('db', 5432)] };
    const first = planRoutes(new Map(), table, PLACE);
    const current = new Map(first.open.map((x) => [x.listen.key, x.route]));
    const second = planRoutes(current, table, PLACE);
    expect(second.open).toEqual([]);
    expect(second.close).toEqual([]);
    expect(second.update).toHaveLength(2);
  });

  it('blocks a second route for a listener instead of letting it replace the first', () => {
    const plan = planRoutes(new Map(), { version: 1, routes: [r('web', 80), r('other', 80)] }, PLACE);
    expect(plan.open.map((x) => x.route.application)).toEqual(['web']);
    expect(plan.blocked[0]?.reason).toMatch(/tcp 127.0.0.11:80 already routes application web/);
  });

  it('closes every port when the table is explicitly empty', () => {
    expect(planRoutes(new Map([[key(80), r('web', 80)]]), { version: 3, routes: [] }, PLACE).close).toEqual([key(80)]);
  });

  it('listens for TCP and UDP on one port number apart, and a host address only there', () => {
    const plan = planRoutes(new Map(), { version: 1, routes: [r('dns', 53), r('dns', 53, false, T, { protocol: 'udp' }), r('admin', 8080, false, T, { host_ip: '127.0.0.1' })] }, PLACE);
    expect(plan.open.map((x) => x.listen)).toEqual([
      { key: key(53), host: '127.0.0.11', port: 53, udp: false },
      { key: key(53, '127.0.0.11', 'udp'), host: '127.0.0.11', port: 53, udp: true },
      { key: key(8080, '127.0.0.1'), host: '127.0.0.1', port: 8080, udp: false },
    ]);
  });

  it('puts a name route on its slot in the service subnet, so two projects\' db:5432 do not meet', () => {
    const plan = planRoutes(new Map(), { version: 1, routes: [r('shop-db', 5432, false, T, { name_slot: 1 }), r('blog-db', 5432, false, T, { name_slot: 2 })] }, PLACE);
    expect(plan.open.map((x) => x.listen.key)).toEqual([key(5432, '10.213.0.1'), key(5432, '10.213.0.2')]);
  });

  it('skips a name route it cannot place, saying why', () => {
    expect(listenOf(r('db', 5432, false, T, { name_slot: 300 }), PLACE)).toEqual({ reason: 'name slot 300 is outside the service subnet 10.213.0.0/24' });
    expect(planRoutes(new Map(), { version: 1, routes: [r('db', 5432, false, T, { name_slot: 1 })] }, { ...PLACE, serviceSubnet: null }).blocked).toEqual([
      { route: r('db', 5432, false, T, { name_slot: 1 }), reason: 'this proxy has no service subnet' },
    ]);
  });
});

describe('dnatRules', () => {
  it('gives forwarding routes a rule and leaves held or targetless routes to user space', () => {
    expect(dnatRules([r('b', 90), r('held', 91, true), r('nowhere', 92, false, null), r('a', 70)])).toEqual([
      { port: 70, target: { host: T.host, port: T.port } },
      { port: 90, target: { host: T.host, port: T.port } },
    ]);
  });

  it('leaves UDP, host-address and name routes to user space', () => {
    expect(dnatRules([r('u', 53, false, T, { protocol: 'udp' }), r('h', 81, false, T, { host_ip: '127.0.0.1' }), r('n', 82, false, T, { name_slot: 3 })])).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import type { Route } from '#common/channel.ts';
import { dnatRules, planRoutes } from './route-plan.ts';

const T = { host: '127.0.0.12', port: 8080, node_uuid: '00000000-0000-4000-8000-000000000002' };
const r = (application: string, port: number, hold = false, target: Route['target'] = T): Route => ({ application, external_port: port, target, hold, generation: 0 });

describe('planRoutes', () => {
  it('opens new ports, closes vanished ones and updates the rest', () => {
    const current = new Map([
      [80, r('web', 80)],
      [5432, r('db', 5432)],
    ]);
    const plan = planRoutes(current, { version: 2, routes: [r('web', 80, true), r('cache', 6379)] });
    expect(plan.open.map((x) => x.external_port)).toEqual([6379]);
    expect(plan.close).toEqual([5432]);
    expect(plan.update).toEqual([r('web', 80, true)]);
    expect(plan.blocked).toEqual([]);
  });

  it('is idempotent: the same table twice opens and closes nothing the second time', () => {
    const table = { version: 1, routes: [r('web', 80), r('db', 5432)] };
    const first = planRoutes(new Map(), table);
    const current = new Map(first.open.map((x) => [x.external_port, x]));
    const second = planRoutes(current, table);
    expect(second.open).toEqual([]);
    expect(second.close).toEqual([]);
    expect(second.update).toHaveLength(2);
  });

  it('blocks a second route for a port instead of letting it replace the first', () => {
    const plan = planRoutes(new Map(), { version: 1, routes: [r('web', 80), r('other', 80)] });
    expect(plan.open.map((x) => x.application)).toEqual(['web']);
    expect(plan.blocked[0]?.reason).toMatch(/port 80 already routes application web/);
  });

  it('closes every port when the table is explicitly empty', () => {
    expect(planRoutes(new Map([[80, r('web', 80)]]), { version: 3, routes: [] }).close).toEqual([80]);
  });
});

describe('dnatRules', () => {
  it('gives forwarding routes a rule and leaves held or targetless routes to user space', () => {
    expect(dnatRules([r('b', 90), r('held', 91, true), r('nowhere', 92, false, null), r('a', 70)])).toEqual([
      { port: 70, target: { host: T.host, port: T.port } },
      { port: 90, target: { host: T.host, port: T.port } },
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import type { Application, Desired, Migration, ObservedContainer } from '#common/model.ts';
import { routesOf } from '../channel/route-table.ts';
import { validateDesired } from '../store/validate.ts';
import { carryUpdateHolds, settleUpdateHolds } from './update-holds.ts';

// The update hold's decisions, pure (docs/DESIGN.md §30 "Updating a single application").
const N1 = '00000001-0000-4000-8000-000000000001';
const N2 = '00000001-0000-4000-8000-000000000002';
const U = '0000000b-0000-4000-8000-00000000000';
const app = (extra: Partial<Application> = {}) => ({ name: 'cache', node_uuid: N1, image: 'redis:7', ports: [{ internal: 6379, external: 16379 }], environment: { V: '1' }, ...extra }) as Application;
const doc = (...applications: Application[]): Desired => validateDesired({ applications });
let ids = 0;
const ctx = { now: 1_000, newId: () => `${U}${++ids}` };
const seen = (extra: Partial<ObservedContainer> = {}): ObservedContainer => ({ name: 'cache', image: 'redis:7', running: true, health: 'unknown', restart_count: 0, published: [{ internal: 6379, host: '127.0.0.11', host_port: 32001 }], generation: 0, ...extra });

describe('update holds', () => {
  it('starts one when a write changes what the container runs on the node it stays on, and none for a change that keeps the spec', () => {
    const before = doc(app());
    const changed = carryUpdateHolds(before, doc(app({ environment: { V: '2' } })), ctx);
    expect(changed.applications[0]!.update_hold).toEqual({ id: `${U}${ids}`, started_at: 1_000, held_at: null });
    expect(carryUpdateHolds(before, doc(app()), ctx).applications[0]!.update_hold).toBeUndefined();
  });

  it('starts none for a move, several instances, an application the proxies do not serve, a new application, or a hold a user gives', () => {
    const before = doc(app());
    expect(carryUpdateHolds(before, doc(app({ node_uuid: N2, environment: { V: '2' } })), ctx).applications[0]!.update_hold).toBeUndefined();
    expect(carryUpdateHolds(doc(app({ ports: [] })), doc(app({ ports: [], environment: { V: '2' } })), ctx).applications[0]!.update_hold).toBeUndefined();
    const { node_uuid: _n, ...unplaced } = app();
    expect(carryUpdateHolds(doc({ ...unplaced, instances: 2 } as Application), doc({ ...unplaced, instances: 2, environment: { V: '2' } } as Application), ctx).applications[0]!.update_hold).toBeUndefined();
    expect(carryUpdateHolds(doc(), doc(app()), ctx).applications[0]!.update_hold).toBeUndefined();
    const forged = app({ update_hold: { id: `${U}9`, started_at: 0, held_at: 0 } });
    expect(carryUpdateHolds(before, doc(forged), ctx).applications[0]!.update_hold).toBeUndefined();
  });

  it('keeps a hold through a write that does not give it, and lets one with its id advance it', () => {
    const hold = { id: `${U}7`, started_at: 5, held_at: null };
    const before = doc(app({ update_hold: hold }));
    expect(carryUpdateHolds(before, doc(app()), ctx).applications[0]!.update_hold).toEqual(hold);
    const advanced = { ...hold, held_at: 9 };
    expect(carryUpdateHolds(before, doc(app({ update_hold: advanced })), ctx).applications[0]!.update_hold).toEqual(advanced);
  });

  it('holds the route until the container of the update runs (healthy with a health check), then forwards to it', () => {
    const held = app({ update_hold: { id: `${U}7`, started_at: 5, held_at: 9 } });
    expect(routesOf(held, seen(), undefined, undefined)[0]).toMatchObject({ hold: true, migration: `${U}7`, target: { port: 32001 } });
    expect(routesOf(held, seen({ update: `${U}7` }), undefined, undefined)[0]).toMatchObject({ hold: false, target: { port: 32001 } });
    const checked = { ...held, health_check: { type: 'tcp', port: 6379 } } as Application;
    expect(routesOf(checked, seen({ update: `${U}7`, health: 'starting' }), undefined, undefined)[0]!.hold).toBe(true);
    expect(routesOf(checked, seen({ update: `${U}7`, health: 'healthy' }), undefined, undefined)[0]!.hold).toBe(false);
  });

  it('keeps the released update\'s id on the route until a newer migration, and holds no more', () => {
    const released = app({ update_hold: { id: `${U}7`, started_at: 5, held_at: 9, released_at: 20, ended: 'ready' } });
    expect(routesOf(released, seen(), undefined, undefined)[0]).toMatchObject({ hold: false, migration: `${U}7` });
    const move = { id: '0000000e-0000-4000-8000-000000000001', started_at: 30, generation: 1, phase: 'done' } as Migration;
    expect(routesOf(released, seen(), undefined, move)[0]!.migration).toBe(move.id);
    expect(routesOf(released, seen(), undefined, { ...move, started_at: 1 })[0]!.migration).toBe(`${U}7`);
  });

  it('ends a hold once its container is ready, or at the deadline whatever it does', () => {
    const desired = doc(app({ update_hold: { id: `${U}7`, started_at: 0, held_at: 9 } }));
    const settle = (now: number, c: ObservedContainer | undefined) => settleUpdateHolds(desired, { now, deadlineMs: 120_000, seen: () => c });
    expect(settle(1_000, seen()).ended).toEqual([]);
    expect(settle(1_000, seen({ update: `${U}7` })).ended).toEqual([{ application: 'cache', id: `${U}7`, why: 'ready', heldForMs: 1_000 }]);
    expect(settle(1_000, seen({ update: `${U}7` })).desired.applications[0]!.update_hold).toEqual({ id: `${U}7`, started_at: 0, held_at: 9, released_at: 1_000, ended: 'ready' });
    // Released: nothing more to end.
    const released = settle(1_000, seen({ update: `${U}7` })).desired;
    expect(settleUpdateHolds(released, { now: 500_000, deadlineMs: 120_000, seen: () => undefined }).ended).toEqual([]);
    expect(settle(120_000, seen({ running: false })).ended).toMatchObject([{ why: 'deadline' }]);
  });
});

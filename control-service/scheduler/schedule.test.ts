import { describe, expect, it } from 'vitest';
import type { Application, Dataset, Desired, Node } from '#common/model.ts';
import { UNPLACED_PRIMARY } from '#common/model.ts';
import { applySchedule } from '../desired/placement.ts';
import { validateDesired } from '../store/validate.ts';
import { schedule, type ScheduleResult } from './schedule.ts';

const n = (i: number) => `00000001-0000-4000-8000-${String(i).padStart(12, '0')}`;
const d = (i: number) => `0000000d-0000-4000-8000-${String(i).padStart(12, '0')}`;
const node = (i: number, labels: Record<string, string> = {}): Node => ({ uuid: n(i), host: `127.0.0.${10 + i}`, labels, transfer: {} });
const app = (name: string, extra: Partial<Application> = {}): Application =>
  ({ name, image: 'x', environment: {}, ports: [], volumes: [], links: [], restart_policy: { name: 'never' }, labels: {}, ...extra }) as Application;
const placed = (name: string, at: number, extra: Partial<Application> = {}) => app(name, { node_uuid: n(at), ...extra });
const rules = (p: Partial<NonNullable<Application['placement']>>) => ({ placement: { constraints: [], affinity: [], anti_affinity: [], strategy: 'spread' as const, ...p } });

function doc(nodes: Node[], applications: Application[], datasets: Dataset[] = []): Desired {
  return validateDesired({ nodes, applications, datasets, leases: [], migrations: [] });
}
const up = (...ids: number[]) => new Set(ids.map(n));
const result = (place: [string, number][] = [], unschedulable: [string, string][] = [], move: [string, number][] = []): ScheduleResult => ({
  place: new Map(place.map(([a, i]) => [a, n(i)])),
  move: new Map(move.map(([a, i]) => [a, n(i)])),
  unschedulable: new Map(unschedulable),
});

describe('schedule', () => {
  it('spreads new applications over the nodes with the fewest applications (the default)', () => {
    const desired = doc([node(1), node(2), node(3)], [placed('old', 1), app('a'), app('b'), app('c')]);
    expect(schedule({ desired, up: up(1, 2, 3), seed: 1 })).toEqual(result([['a', 2], ['b', 3], ['c', 1]]));
  });

  it('binpacks onto the node with the most applications', () => {
    const desired = doc([node(1), node(2)], [placed('old', 2), app('a', rules({ strategy: 'binpack' })), app('b', rules({ strategy: 'binpack' }))]);
    expect(schedule({ desired, up: up(1, 2), seed: 1 })).toEqual(result([['a', 2], ['b', 2]]));
  });

  it('chooses at random from the seed, the same way every time', () => {
    const desired = doc([node(1), node(2), node(3), node(4)], Array.from({ length: 8 }, (_, i) => app(`r${i}`, rules({ strategy: 'random' }))));
    const once = schedule({ desired, up: up(1, 2, 3, 4), seed: 42 });
    expect(schedule({ desired, up: up(1, 2, 3, 4), seed: 42 })).toEqual(once);
    expect(new Set(once.place.values()).size).toBeGreaterThan(1);
  });

  it('follows label, host and uuid constraints, == and !=', () => {
    const desired = doc(
      [node(1, { disk: 'hdd' }), node(2, { disk: 'ssd' }), node(3, { disk: 'ssd', zone: 'b' })],
      [
        app('fast', rules({ constraints: ['node.labels.disk == ssd', 'node.labels.zone != b'] })),
        app('pinned', rules({ constraints: ['node.host == 127.0.0.13'] })),
        app('not1', rules({ constraints: [`node.id != ${n(1)}`, 'node.labels.disk != ssd'] })),
      ],
    );
    expect(schedule({ desired, up: up(1, 2, 3), seed: 1 })).toEqual(
      result([['fast', 2], ['pinned', 3]], [['not1', `no node fits: fails "node.id != ${n(1)}" (1 node); fails "node.labels.disk != ssd" (2 nodes)`]]),
    );
  });

  it('places next to its affinity and away from its anti-affinity, in either order of names', () => {
    const desired = doc(
      [node(1), node(2), node(3)],
      [app('a-cache', rules({ affinity: ['z-db'] })), app('b-replica', rules({ anti_affinity: ['z-db'] })), placed('other', 2), app('z-db')],
    );
    expect(schedule({ desired, up: up(1, 2, 3), seed: 1 })).toEqual(result([['b-replica', 1], ['z-db', 3], ['a-cache', 3]]));
  });

  it('keeps apart two applications when only one of them names the other', () => {
    const desired = doc([node(1), node(2)], [placed('db', 1), app('x', {}), app('db2', rules({ anti_affinity: ['x'] }))]);
    const out = schedule({ desired, up: up(1, 2), seed: 1 });
    expect(out.place.get('x')).not.toBe(out.place.get('db2'));
  });

  it('counts memory against the memory label of a node', () => {
    const GiB = 1024 ** 3;
    const desired = doc([node(1, { memory: '2G' }), node(2, { memory: String(1 * GiB) })], [placed('big', 1, { memory_limit: 1.5 * GiB }), app('a', { memory_limit: GiB }), app('b', { memory_limit: GiB })]);
    expect(schedule({ desired, up: up(1, 2), seed: 1 })).toEqual(result([['a', 2]], [['b', 'no node fits: not enough memory (needs 1 GiB) (2 nodes)']]));
  });

  it('puts an application where its existing data is', () => {
    const dataset: Dataset = { dataset_id: d(1), primary: n(3), maximum_size: null, metadata: {}, deleted: false, replication: null, replicas: [] };
    const fresh: Dataset = { ...dataset, dataset_id: d(2), primary: UNPLACED_PRIMARY };
    const desired = doc([node(1), node(2), node(3)], [app('db', { volumes: [{ dataset_id: d(1), mountpoint: '/d' }] }), app('new', { volumes: [{ dataset_id: d(2), mountpoint: '/d' }] })], [dataset, fresh]);
    expect(schedule({ desired, up: up(1, 2, 3), seed: 1 })).toEqual(result([['db', 3], ['new', 1]]));
  });

  it('never chooses a node that is not up, and says so when none is', () => {
    const desired = doc([node(1), node(2)], [app('a')]);
    expect(schedule({ desired, up: up(2), seed: 1 })).toEqual(result([['a', 2]]));
    expect(schedule({ desired, up: up(), seed: 1 })).toEqual(result([], [['a', 'no node is up']]));
  });

  it('is sticky: a placed application stays while its node fits, even when another is emptier', () => {
    const desired = doc([node(1, { disk: 'ssd' }), node(2, { disk: 'ssd' })], [placed('a', 1, rules({ constraints: ['node.labels.disk == ssd'] })), placed('b', 1)]);
    expect(schedule({ desired, up: up(1, 2), seed: 1 })).toEqual(result());
  });

  it('moves a placed application whose node no longer satisfies its constraints', () => {
    const desired = doc([node(1, { disk: 'hdd' }), node(2, { disk: 'ssd' })], [placed('a', 1, rules({ constraints: ['node.labels.disk == ssd'] }))]);
    expect(schedule({ desired, up: up(1, 2), seed: 1 })).toEqual(result([], [], [['a', 2]]));
    expect(schedule({ desired, up: up(1), seed: 1 })).toEqual(
      result([], [['a', `its node ${n(1)} no longer satisfies "node.labels.disk == ssd", and no other node fits`]]),
    );
  });

  it('leaves alone an application on a node that is not up (unknown is not empty)', () => {
    const desired = doc([node(1, { disk: 'hdd' }), node(2, { disk: 'ssd' })], [placed('a', 1, rules({ constraints: ['node.labels.disk == ssd'] }))]);
    expect(schedule({ desired, up: up(2), seed: 1 })).toEqual(result());
  });

  it('converges: placing twice changes nothing', () => {
    const desired = doc(
      [node(1, { disk: 'ssd' }), node(2), node(3, { disk: 'ssd' })],
      [app('a'), app('b', rules({ constraints: ['node.labels.disk == ssd'] })), app('c', rules({ affinity: ['a'] })), app('d', rules({ anti_affinity: ['a'], strategy: 'binpack' })), placed('e', 2)],
    );
    const start = { now: 1, version: 1 };
    const first = validateDesired(applySchedule(desired, schedule({ desired, up: up(1, 2, 3), seed: 3 }), start).desired);
    expect(first.applications.every((a) => a.node_uuid !== undefined)).toBe(true);
    const again = schedule({ desired: first, up: up(1, 2, 3), seed: 3 });
    expect(again).toEqual(result());
    expect(applySchedule(first, again, start).desired).toBe(first);
  });

  it('sets the primary of a placed application’s unplaced datasets to its node', () => {
    const fresh: Dataset = { dataset_id: d(2), primary: UNPLACED_PRIMARY, maximum_size: null, metadata: {}, deleted: false, replication: null, replicas: [] };
    const desired = doc([node(1)], [app('new', { volumes: [{ dataset_id: d(2), mountpoint: '/d' }] })], [fresh]);
    const out = applySchedule(desired, schedule({ desired, up: up(1), seed: 1 }), { now: 1, version: 1 }).desired;
    expect(out.applications[0]!.node_uuid).toBe(n(1));
    expect(out.datasets[0]!.primary).toBe(n(1));
  });
});

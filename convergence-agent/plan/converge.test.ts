import { describe, expect, it } from 'vitest';
import { DS_1, NODE_B, app, dataset, desired } from '../testing/fixtures.ts';
import { FakeWorld } from '../testing/fake-world.ts';

// "Converges within N passes" (docs/DESIGN.md §14): plan → apply to a fake world → observe →
// plan, until a pass plans nothing.
const web = app('web', {
  volumes: [{ dataset_id: DS_1, mountpoint: '/data' }],
  ports: [{ internal: 80, external: 8080 }],
  restart_policy: { name: 'always' },
});

describe('convergence against a fake world', () => {
  it('converges a new application with its dataset within 5 passes, and then stays put', async () => {
    const world = new FakeWorld();
    const d = desired({ datasets: [dataset(DS_1, undefined, { maximum_size: 67108864 })], applications: [web] });
    expect(await world.converge(d)).toBeLessThanOrEqual(5);
    const ds = await world.store.getDataset(DS_1);
    expect(ds).toMatchObject({ readonly: false, mounted: true, refquota: 67108864 });
    const c = world.runtime.byName('drover-web');
    expect(c).toMatchObject({ running: true, mountSources: [`/mnt/drover/${DS_1}`] });
    expect((await world.pass(d)).changes).toEqual([]);
  });

  it('recreates a container whose spec changed within 5 passes', async () => {
    const world = new FakeWorld();
    await world.converge(desired({ datasets: [dataset(DS_1)], applications: [web] }));
    const changed = desired({ datasets: [dataset(DS_1)], applications: [{ ...web, environment: { MODE: 'new' } }] });
    expect(await world.converge(changed)).toBeLessThanOrEqual(5);
    expect(world.runtime.byName('drover-web')?.spec.env).toEqual(['MODE=new']);
    expect(world.runtime.calls.slice(-3)).toEqual(['stop drover-web', 'remove drover-web', 'createAndStart drover-web']);
  });

  it('lets go of an application placed elsewhere: stopped, removed, its dataset kept read-only', async () => {
    const world = new FakeWorld();
    await world.converge(desired({ datasets: [dataset(DS_1)], applications: [web] }));
    const moved = desired({ datasets: [dataset(DS_1, NODE_B)], applications: [{ ...web, node_uuid: NODE_B }] });
    expect(await world.converge(moved)).toBeLessThanOrEqual(5);
    expect(world.runtime.containers.size).toBe(0);
    expect(await world.store.getDataset(DS_1)).toMatchObject({ readonly: true });
  });

  it('destroys a tombstoned dataset only after the container using it is gone', async () => {
    const world = new FakeWorld();
    await world.converge(desired({ datasets: [dataset(DS_1)], applications: [web] }));
    const gone = desired({ datasets: [dataset(DS_1, undefined, { deleted: true })], applications: [] });
    expect(await world.converge(gone)).toBeLessThanOrEqual(5);
    expect(world.runtime.containers.size).toBe(0);
    expect(await world.store.getDataset(DS_1)).toBeNull();
  });

  it('restarts a crashed container within 5 passes and counts the restart', async () => {
    const world = new FakeWorld();
    const d = desired({ datasets: [dataset(DS_1)], applications: [web] });
    await world.converge(d);
    world.runtime.crash('drover-web', 137);
    expect(await world.converge(d)).toBeLessThanOrEqual(5);
    expect(world.runtime.byName('drover-web')?.running).toBe(true);
    const observed = await world.observe();
    expect(observed.containers?.[0]).toMatchObject({ restartCount: 1, consecutiveRestarts: 1 });
  });

  it('keeps converging the rest when one change keeps failing', async () => {
    const world = new FakeWorld();
    const other = app('other');
    world.runtime.failNext('createAndStart', undefined, 'drover-web');
    const d = desired({ datasets: [dataset(DS_1)], applications: [web, other] });
    expect(await world.converge(d)).toBeLessThanOrEqual(5);
    expect(world.runtime.byName('drover-other')?.running).toBe(true);
    expect(world.runtime.byName('drover-web')?.running).toBe(true);
  });
});

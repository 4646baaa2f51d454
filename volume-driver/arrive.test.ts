import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { cleanup, errorOf, ME, OTHER, setup } from './testing/driver-fixture.ts';

afterEach(cleanup);

// Time is a FakeClock: a Mount's wait (polls, deadline) moves only when the test moves it,
// `clock.run` drives a Mount to its end, and `waiting` is "the Mount is asleep between polls".
const waiting = (clock: FakeClock) => expect.poll(() => clock.pending).toBe(1);

describe('Mount of a volume that lives on another node', () => {
  it('moves a volume that lives on another node here on Mount', async () => {
    const { driver, control } = await setup();
    await driver.create('v1', { node: '127.0.0.12' });
    const path = await driver.mount('v1', 'A');
    expect(path).toBe(`/fake/${ME}/${control.datasets[0]!.dataset_id}`);
    expect(control.datasets[0]!.primary).toBe(ME);
  });

  it('waits for a move under way and mounts when it is done', async () => {
    const clock = new FakeClock();
    const { driver, control } = await setup({ moves: 'manual', clock });
    await driver.create('v1', { node: '127.0.0.12' });
    const mounting = driver.mount('v1', 'A');
    await waiting(clock);
    await clock.advance(100);
    control.finish(control.migrationOf(control.datasets[0]!.dataset_id)!.id);
    expect(await clock.run(mounting)).toMatch(new RegExp(`^/fake/${ME}/`));
  });

  it('answers a Mount that ran out of time with where the volume is and how far the move got', async () => {
    const clock = new FakeClock();
    const { driver, control } = await setup({ moves: 'manual', mountTimeoutMs: 300, clock });
    await driver.create('v1', { node: '127.0.0.12' });
    const mounting = errorOf(driver.mount('v1', 'A'));
    await waiting(clock);
    await clock.advance(100);
    const migration = control.migrationOf(control.datasets[0]!.dataset_id)!;
    control.advance(migration.id, { phase: 'pre-copy', round: 2, bytes_sent: 12 * 1024 ** 2, bytes_total: 48 * 1024 ** 2 });
    expect(await clock.run(mounting)).toBe(
      `volume "v1" is still moving to this node from node 127.0.0.12 (22222222): migration ${migration.id.slice(0, 8)} in pre-copy, round 2, 12M of 48M sent. ` +
        'Not ready after 0 s; run the container again to keep waiting (the move goes on without it).',
    );
    expect(control.leases).toEqual([]);
    // Docker never Unmounts a failed Mount; asking again joins the same move.
    const again = driver.mount('v1', 'A');
    await waiting(clock);
    control.finish(migration.id);
    await clock.run(again);
    expect(control.migrations).toHaveLength(1);
  });

  it('fails a Mount when the move fails, or when another node keeps the lease', async () => {
    const clock = new FakeClock();
    const { driver, control } = await setup({ moves: 'manual', mountTimeoutMs: 5_000, clock });
    await driver.create('v1', { node: '127.0.0.12' });
    const mounting = errorOf(driver.mount('v1', 'A'));
    await waiting(clock);
    control.fail(control.migrationOf(control.datasets[0]!.dataset_id)!.id, 'no space left on 127.0.0.11');
    expect(await clock.run(mounting)).toBe('moving volume "v1" to this node failed: no space left on 127.0.0.11; it stays on node 127.0.0.12 (22222222)');

    await driver.create('v2', { node: '127.0.0.12' });
    await control.acquireLease(control.datasets[1]!.dataset_id, OTHER);
    expect(await clock.run(errorOf(driver.mount('v2', 'A')))).toBe(
      'volume "v2" is in use on node 127.0.0.12 (22222222) (it holds the volume\'s lease); stop the containers using it there first',
    );
  });

  it('keeps waiting through a control service outage during a move, and says so if time runs out', async () => {
    const clock = new FakeClock();
    const { driver, control } = await setup({ moves: 'manual', mountTimeoutMs: 400, clock });
    await driver.create('v1', { node: '127.0.0.12' });
    const mounting = driver.mount('v1', 'A');
    await waiting(clock);
    await clock.advance(60);
    control.unreachable = true;
    const outageEnds = clock.now() + 100;
    await clock.runUntil(() => clock.now() >= outageEnds);
    control.unreachable = false;
    control.finish(control.migrationOf(control.datasets[0]!.dataset_id)!.id);
    expect(await clock.run(mounting)).toMatch(/^\/fake\//);

    await driver.create('v2', { node: '127.0.0.12' });
    const late = errorOf(driver.mount('v2', 'A'));
    await waiting(clock);
    await clock.advance(60);
    control.unreachable = true;
    expect(await clock.run(late)).toMatch(/^volume "v2" is still moving to this node from node 22222222-2222-4222-8222-222222222222: .* Last error: control service did not answer \(fake: unreachable\)$/);
  });

  it('ends a waiting Mount with an Err when the plugin stops', async () => {
    const clock = new FakeClock();
    const { driver } = await setup({ moves: 'manual', mountTimeoutMs: 60_000, clock });
    await driver.create('v1', { node: '127.0.0.12' });
    const mounting = errorOf(driver.mount('v1', 'A'));
    await waiting(clock);
    await clock.advance(50);
    driver.stop();
    expect(await mounting).toBe('the drover volume plugin is stopping; volume "v1" was not mounted');
  });

  it('says where a volume is when Path is asked on the wrong node', async () => {
    const { driver } = await setup();
    await driver.create('v1', { node: '127.0.0.12' });
    expect(await errorOf(driver.path('v1'))).toBe('volume "v1" is not on this node: it is on node 127.0.0.12 (22222222)');
  });

});

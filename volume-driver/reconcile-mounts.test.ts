import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { DroverError } from '#common/errors.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { volumesInUse, type DockerVolumes } from './docker-volumes.ts';
import { VolumeDriver } from './driver.ts';
import { LEASE_TTL_SECONDS } from './lease-keeper.ts';
import { MountStore } from './mount-store.ts';
import { FakeControl } from './testing/fake-control.ts';
import { ME, NODES } from './testing/driver-fixture.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A driver whose dockerd answers `inUse` (a set the test edits, or an error); `v1` created here. */
async function world() {
  const dir = await mkdtemp(join(tmpdir(), 'drover-reconcile-'));
  dirs.push(dir);
  const clock = new FakeClock();
  const control = new FakeControl({ nodes: NODES, moves: 'instant' });
  const inUse = new Set<string>();
  let dockerDown = false;
  const docker: DockerVolumes = {
    inUse: async () => {
      if (dockerDown) throw new DroverError('DROVER_DOCKER_UNAVAILABLE', 'no dockerd', { retryable: true });
      return new Set(inUse);
    },
  };
  const open = async () => new VolumeDriver({ control, store: await MountStore.open(dir), nodeUuid: ME, log: silentLogger(), clock, docker, mountSettleMs: 30_000 });
  const driver = await open();
  await driver.create('v1', null);
  const leases = () => control.leases.map((l) => [l.node_uuid === ME ? 'me' : 'other', l.expires]);
  return { driver, open, control, clock, inUse, leases, setDockerDown: (down: boolean) => (dockerDown = down) };
}

describe('the plugin across failures', () => {
  it('takes leases that expire, and renews those of mounted volumes when it reconciles', async () => {
    const w = await world();
    await w.clock.run(w.driver.mount('v1', 'c1'));
    expect(w.leases()).toEqual([['me', LEASE_TTL_SECONDS]]);
    w.inUse.add('v1');
    w.control.leases.splice(0); // expired at the control service meanwhile
    await w.clock.run(w.driver.reconcile());
    expect(w.leases()).toEqual([['me', LEASE_TTL_SECONDS]]);
  });

  it('forgets the mounts of a volume no container uses any more (stopped while the plugin was down) and releases its lease', async () => {
    const w = await world();
    await w.clock.run(w.driver.mount('v1', 'c1'));
    // The plugin restarts; the container stops meanwhile, so Docker's Unmount never arrives.
    const restarted = await w.open();
    expect(restarted.catalog).toBeDefined();
    await w.clock.advance(30_001);
    expect(await w.clock.run(restarted.reconcileMounts())).toEqual(['v1']);
    expect(w.leases()).toEqual([]);
    expect((await restarted.get('v1')).Status).toMatchObject({ mounts: 0 });
  });

  it('keeps the mounts of a volume a running container uses', async () => {
    const w = await world();
    await w.clock.run(w.driver.mount('v1', 'c1'));
    w.inUse.add('v1');
    await w.clock.advance(60_000);
    expect(await w.clock.run(w.driver.reconcileMounts())).toEqual([]);
    expect(w.leases()).toEqual([['me', LEASE_TTL_SECONDS]]);
  });

  it('leaves a volume mounted within the settle time alone: its container may be starting', async () => {
    const w = await world();
    await w.clock.run(w.driver.mount('v1', 'c1'));
    await w.clock.advance(29_000);
    expect(await w.clock.run(w.driver.reconcileMounts())).toEqual([]);
    await w.clock.advance(2_000);
    expect(await w.clock.run(w.driver.reconcileMounts())).toEqual(['v1']);
  });

  it('changes nothing when dockerd does not answer', async () => {
    const w = await world();
    await w.clock.run(w.driver.mount('v1', 'c1'));
    await w.clock.advance(60_000);
    w.setDockerDown(true);
    expect(await w.clock.run(w.driver.reconcileMounts())).toEqual([]);
    expect(w.leases()).toEqual([['me', LEASE_TTL_SECONDS]]);
  });

  it("reads the volumes in use from docker's container list: this plugin's, in containers that hold mounts", () => {
    const containers = [
      { State: 'running', Mounts: [{ Type: 'volume', Name: 'a', Driver: 'drover-n1' }, { Type: 'volume', Name: 'x', Driver: 'local' }, { Type: 'bind' }] },
      { State: 'paused', Mounts: [{ Type: 'volume', Name: 'b', Driver: 'drover-n1' }] },
      { State: 'exited', Mounts: [{ Type: 'volume', Name: 'c', Driver: 'drover-n1' }] },
      { State: 'created', Mounts: [{ Type: 'volume', Name: 'd', Driver: 'drover-n1' }] },
      { State: 'restarting' },
    ];
    expect([...volumesInUse(containers, 'drover-n1')]).toEqual(['a', 'b']);
  });
});

import { describe, expect, it } from 'vitest';
import type { AgentDesired, MigrationUpdate } from '#common/channel.ts';
import { DS_1, NODE_A, NODE_B, app, dataset, desired, migration } from '../testing/fixtures.ts';
import { FakeWorld } from '../testing/fake-world.ts';
import { Executor } from '../execute.ts';
import { silentLogger } from '#common/log.ts';
import { plan } from '../plan/plan.ts';
import type { Migration } from '#common/model.ts';

// The target's side of a migration on a whole fake node (real planner, real executor): a
// replica that arrived by `recv -u` (read-only, unmounted, no size) becomes primary after
// handoff and the application starts on it; then the node posts release and done.
describe('the target of a migration converges', () => {
  const web = app('web', { node_uuid: NODE_A, volumes: [{ dataset_id: DS_1, mountpoint: '/data' }] });

  async function node() {
    const world = new FakeWorld(NODE_A);
    await world.store.createDataset(DS_1, { maximumSize: null });
    await world.store.setReadonly(DS_1, true);
    await world.store.unmount(DS_1);
    const posts: MigrationUpdate[] = [];
    const executor = new Executor({
      store: world.store,
      runtime: world.runtime,
      ledger: world.ledger,
      clock: world.clock,
      log: silentLogger(),
      nodeUuid: NODE_A,
      migrations: { run: () => {}, post: async (_id, u) => void posts.push(u) },
    });
    const pass = async (d: AgentDesired) => {
      const result = plan(d, await world.observe(), { nodeUuid: NODE_A, address: '127.0.0.11', now: world.clock.now() });
      await executor.execute(result.changes);
      await world.clock.advance(100);
      return result.changes;
    };
    return { world, posts, pass };
  }

  const at = (phase: Migration['phase']) =>
    desired({ datasets: [dataset(DS_1, NODE_A, { maximum_size: 67108864 })], applications: [web], migrations: [migration({ phase, from: NODE_B, to: NODE_A, generation: 5 })] });

  it('makes the received replica primary, starts the application and posts release within 5 passes of handoff, then done', async () => {
    const { world, posts, pass } = await node();
    let passes = 0;
    while (posts.length === 0 && passes < 5) {
      await pass(at('handoff'));
      passes += 1;
    }
    expect(posts).toEqual([{ node_uuid: NODE_A, generation: 5, phase: 'release' }]);
    expect(await world.store.getDataset(DS_1)).toMatchObject({ readonly: false, mounted: true, refquota: 67108864 });
    expect(world.runtime.byName('drover-web')).toMatchObject({ running: true, labels: expect.objectContaining({ 'drover.generation': '5' }) });
    await pass(at('release'));
    expect(posts.map((p) => p.phase)).toEqual(['release', 'done']);
    expect(await pass({ ...at('done'), migrations: [] })).toEqual([]);
  });

  it('touches nothing of the replica before handoff but keeping it read-only', async () => {
    const { world, posts, pass } = await node();
    const before = desired({ datasets: [dataset(DS_1, NODE_B)], applications: [{ ...web, node_uuid: NODE_B }], migrations: [migration({ phase: 'cutover', from: NODE_B, to: NODE_A })] });
    expect(await pass(before)).toEqual([]);
    expect(posts).toEqual([]);
    expect(await world.store.getDataset(DS_1)).toMatchObject({ readonly: true, mounted: false });
    expect(world.runtime.byName('drover-web')).toBeUndefined();
  });
});

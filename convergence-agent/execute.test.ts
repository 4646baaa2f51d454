import { describe, expect, it } from 'vitest';
import { DroverError } from '#common/errors.ts';
import { silentLogger } from '#common/log.ts';
import { Executor } from './execute.ts';
import { containerSpec } from './plan/container-spec.ts';
import type { Change } from './plan/types.ts';
import { RestartLedger } from './restart-ledger.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { FakeContainerRuntime } from './testing/fake-container-runtime.ts';
import { ADDRESS_A, DS_1, DS_2, NODE_A, app } from './testing/fixtures.ts';
import { FakeDatasetStore } from './testing/fake-dataset-store.ts';

function setup() {
  const clock = new FakeClock();
  const store = new FakeDatasetStore({ pool: 'fakepool' });
  const runtime = new FakeContainerRuntime(() => clock.now());
  const ledger = new RestartLedger();
  const executor = new Executor({ store, runtime, ledger, clock, log: silentLogger(), backoff: { initialMs: 1_000, capMs: 4_000 } });
  return { clock, store, runtime, ledger, executor };
}
const spec = (name: string) => containerSpec(app(name), { nodeUuid: NODE_A, address: ADDRESS_A, generation: 0, mountpoints: new Map() });

describe('executor', () => {
  it('applies the other changes when one fails, and reports the failure', async () => {
    const { executor, runtime, store } = setup();
    runtime.failNext('createAndStart', new DroverError('DROVER_DOCKER_FAILED', 'image is broken'), 'drover-bad');
    const changes: Change[] = [
      { kind: 'create-dataset', datasetId: DS_1, maximumSize: null },
      { kind: 'start-container', spec: spec('bad') },
      { kind: 'start-container', spec: spec('good') },
      { kind: 'create-dataset', datasetId: DS_2, maximumSize: null },
    ];
    const result = await executor.execute(changes);
    expect(result.applied).toHaveLength(3);
    expect(result.failed).toEqual([{ change: changes[1], error: 'image is broken' }]);
    expect(result.problems).toEqual([{ subject: 'container:drover-bad', kind: 'failed', reason: 'start-container: image is broken' }]);
    expect(runtime.byName('drover-good')?.running).toBe(true);
    expect((await store.listDatasets()).map((d) => d.datasetId)).toEqual([DS_1, DS_2]);
  });

  it('starts a container named `after` a dataset step only once that step applied, and holds it back when it failed', async () => {
    const { executor, runtime, store } = setup();
    await store.createDataset(DS_1, { maximumSize: null });
    await store.setReadonly(DS_1, true);
    const order: string[] = [];
    const setReadonly = store.setReadonly.bind(store);
    store.setReadonly = async (id, readonly) => {
      await new Promise((r) => setTimeout(r, 20));
      order.push('dataset');
      return setReadonly(id, readonly);
    };
    const createAndStart = runtime.createAndStart.bind(runtime);
    runtime.createAndStart = async (s) => (order.push('container'), createAndStart(s));
    const start: Change = { kind: 'start-container', spec: spec('web'), after: [`dataset:${DS_1}`] };
    const ok = await executor.execute([start, { kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false }]);
    expect(order).toEqual(['dataset', 'container']);
    expect(ok.applied).toHaveLength(2);

    await runtime.stop(runtime.byName('drover-web')!.id);
    await runtime.remove(runtime.byName('drover-web')!.id);
    store.setReadonly = () => Promise.reject(new DroverError('DROVER_ZFS_BUSY', 'dataset is busy'));
    const held = await executor.execute([{ kind: 'set-dataset-readonly', datasetId: DS_1, readonly: false }, start]);
    expect(held.applied).toEqual([]);
    expect(held.problems).toContainEqual({ subject: 'container:drover-web', kind: 'blocked', reason: `start-container waits for dataset:${DS_1}` });
    expect(runtime.byName('drover-web')).toBeUndefined();
  });

  it('survives a change that throws something that is not an Error', async () => {
    const { executor, store } = setup();
    store.createDataset = () => Promise.reject('a string');
    const result = await executor.execute([{ kind: 'create-dataset', datasetId: DS_1, maximumSize: null }]);
    expect(result.failed).toEqual([{ change: { kind: 'create-dataset', datasetId: DS_1, maximumSize: null }, error: 'a string' }]);
  });

  it('holds a failed change back with capped exponential backoff, then retries it when due', async () => {
    const { executor, runtime, clock } = setup();
    const change: Change = { kind: 'start-container', spec: spec('web') };
    const delays: (number | null)[] = [];
    for (let i = 0; i < 4; i++) {
      runtime.failNext('createAndStart');
      const result = await executor.execute([change]);
      expect(result.failed).toHaveLength(1);
      delays.push(result.retryInMs);
      const held = await executor.execute([change]);
      expect(held.failed).toHaveLength(0);
      expect(held.problems[0]?.reason).toMatch(/^start-container failed \d time\(s\), retrying in \d s: /);
      await clock.advance(result.retryInMs!);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 4_000]);
    expect((await executor.execute([change])).applied).toEqual([change]);
  });

  it('forgets the backoff of a change the planner no longer proposes', async () => {
    const { executor, runtime } = setup();
    const change: Change = { kind: 'start-container', spec: spec('web') };
    runtime.failNext('createAndStart');
    await executor.execute([change]);
    await executor.execute([]);
    expect((await executor.execute([change])).applied).toEqual([change]);
  });

  it('counts the restarts it makes, but not the start of a container that never started', async () => {
    const { executor, runtime, ledger } = setup();
    await runtime.createAndStart(spec('web'));
    const id = runtime.byName('drover-web')!.id;
    await executor.execute([{ kind: 'restart-container', name: 'drover-web', containerId: id, reason: 'never-started', consecutiveRestarts: 0 }]);
    expect(ledger.get(id)).toEqual({ restarts: 0, consecutive: 0 });
    await executor.execute([{ kind: 'restart-container', name: 'drover-web', containerId: id, reason: 'crashed', consecutiveRestarts: 3 }]);
    expect(ledger.get(id)).toEqual({ restarts: 1, consecutive: 3 });
  });
});

import { describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { systemClock } from '#common/clock.ts';
import { FakeContainerRuntime } from '../testing/fake-container-runtime.ts';
import { DS_1, NODE_A, NODE_B, desired, migration } from '../testing/fixtures.ts';
import type { Peer, ReplicateOptions, ReplicateResult } from '../transfer/types.ts';
import { FakeDatasetStore } from '../testing/fake-dataset-store.ts';
import { FakeMigrationControl } from '../testing/fake-migration-control.ts';
import { MigrationJobs } from './jobs.ts';
import { DEFAULT_TUNING } from './source-job.ts';

async function registry(replicate: (o: ReplicateOptions) => Promise<ReplicateResult>, settle?: (peer: Peer, datasetId: string) => Promise<void>) {
  const store = new FakeDatasetStore();
  await store.createDataset(DS_1, { maximumSize: null });
  const control = new FakeMigrationControl();
  let changes = 0;
  const jobs = new MigrationJobs({
    nodeUuid: NODE_A,
    control,
    clock: systemClock,
    log: silentLogger(),
    datasets: store,
    runtime: new FakeContainerRuntime(),
    replicate,
    peers: { peerFor: async () => ({ id: NODE_B }) as Peer, close: async () => {} },
    tuning: { ...DEFAULT_TUNING, cutoverPostMs: 300, verdictPostMs: 300, ackWaitMs: 50 },
    stopTimeoutSeconds: 1,
    onChange: () => changes++,
    ...(settle ? { settle } : {}),
  });
  return { jobs, control, changes: () => changes };
}

const until = (probe: () => boolean) => expect.poll(probe, { timeout: 2_000, interval: 5 }).toBe(true);

describe('the migration jobs of an agent', () => {
  it('runs one job per migration and reports how it ended', async () => {
    const ok = async (): Promise<ReplicateResult> => ({ snapshot: 's', guid: '1', bytes: 10, incremental: false, baseSnapshot: null, resumed: false });
    const { jobs, control, changes } = await registry(ok);
    const m = migration({ phase: 'pending', application: null, dataset_ids: [DS_1] });
    control.add(m);
    jobs.sync(desired({ migrations: [m] }));
    jobs.run(m);
    jobs.run(m);
    await until(() => jobs.states()[0]?.outcome !== null);
    expect(jobs.states()).toEqual([{ migrationId: m.id, stage: 'handed-off', outcome: 'handed-off', endedAt: expect.any(Number), error: null }]);
    expect(control.phases).toEqual(['pre-copy', 'cutover', 'handoff']);
    expect(changes()).toBeGreaterThan(0);
  });

  it('stops a pre-copy job whose migration left the desired configuration, and forgets it once ended', async () => {
    const hang = (o: ReplicateOptions) =>
      new Promise<ReplicateResult>((_, reject) => o.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
    const { jobs, control } = await registry(hang);
    const m = migration({ phase: 'pre-copy', from: NODE_A, to: NODE_B });
    control.add(m);
    jobs.sync(desired({ migrations: [m] }));
    jobs.run(m);
    await until(() => jobs.states()[0]?.stage === 'pre-copy');
    jobs.sync(desired({ migrations: [] }));
    await until(() => jobs.states()[0]?.outcome === 'stopped');
    expect(jobs.states()[0]).toMatchObject({ stage: 'pre-copy', outcome: 'stopped' });
    jobs.sync(desired({ migrations: [] }));
    expect(jobs.states()).toEqual([]);
  });

  it('lets a handed-off job settle its final send after its migration left the view, instead of stopping it', async () => {
    const ok = async (): Promise<ReplicateResult> => ({ snapshot: 's', guid: '1', bytes: 10, incremental: false, baseSnapshot: null, resumed: false });
    const settled: string[] = [];
    const { jobs, control } = await registry(ok, async (_peer, id) => void settled.push(id));
    const m = migration({ phase: 'pending', application: null, dataset_ids: [DS_1] });
    control.add(m);
    jobs.sync(desired({ migrations: [m] }));
    jobs.run(m);
    await until(() => jobs.states()[0]?.stage === 'handed-off');
    // The view at handoff: the job waits for the target's release before it settles.
    jobs.sync(desired({ migrations: [{ ...m, phase: 'handoff' }] }));
    await new Promise((r) => setTimeout(r, 250));
    expect(settled).toEqual([]);
    // Released and done before this agent's next pass: the view no longer lists it.
    jobs.sync(desired({ migrations: [] }));
    await until(() => jobs.states()[0]?.outcome !== null);
    expect(jobs.states()[0]).toMatchObject({ stage: 'handed-off', outcome: 'handed-off' });
    expect(settled).toEqual([DS_1]);
  });

  it("posts the target's steps, and refuses to count a refused one as done", async () => {
    const { jobs, control } = await registry(async () => {
      throw new Error('unused');
    });
    const m = migration({ phase: 'handoff', from: NODE_B, to: NODE_A });
    control.add(m);
    await jobs.post(m.id, { node_uuid: NODE_A, generation: m.generation, phase: 'release' });
    expect(control.phases).toEqual(['release']);
    await expect(jobs.post(m.id, { node_uuid: NODE_A, generation: m.generation + 1, phase: 'done' })).rejects.toThrow(/not accepted/);
  });
});

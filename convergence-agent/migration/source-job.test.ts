import { describe, expect, it } from 'vitest';
import { DroverError } from '#common/errors.ts';
import type { MigrationPhase } from '#common/model.ts';
import { silentLogger } from '#common/log.ts';
import { systemClock, type Clock } from '#common/clock.ts';
import { FakeClock, settle } from '#common/testing/fake-clock.ts';
import { containerSpec } from '../plan/container-spec.ts';
import { FakeContainerRuntime } from '../testing/fake-container-runtime.ts';
import { ADDRESS_A, DS_1, DS_2, NODE_A, NODE_B, app, migration, node } from '../testing/fixtures.ts';
import type { Peer, ReplicateOptions, ReplicateResult } from '../transfer/types.ts';
import { FakeDatasetStore } from '../testing/fake-dataset-store.ts';
import { FakeMigrationControl } from '../testing/fake-migration-control.ts';
import { DEFAULT_TUNING, SourceJob, type JobStage } from './source-job.ts';
import { PromAgentMetrics } from '../prom-metrics.ts';
import { sampleValue } from '#common/testing/prom-text.ts';

const MiB = 1024 * 1024;

/** One node (A) moving `web` with its datasets to B: fakes for everything but the job. */
async function world(
  options: {
    phase?: 'pending' | 'pre-copy' | 'cutover' | 'handoff';
    datasets?: string[];
    generation?: number;
    /** Runs inside each replicate call (the n-th, from 1) before it answers. */
    during?: (o: ReplicateOptions, n: number, store: FakeDatasetStore) => Promise<void>;
    progressIntervalMs?: number;
    clock?: Clock;
    metrics?: PromAgentMetrics;
    /** The application's `move.before_stop` command. */
    hook?: string[];
    /** Runs while the final receive is opened on the target. */
    opening?: (datasetId: string) => Promise<void>;
    /** The migration's phase as the agent's view has it (absent: no view, settled at once). */
    phaseOf?: () => MigrationPhase | null;
  } = {},
) {
  const datasets = options.datasets ?? [DS_1];
  const store = new FakeDatasetStore({ mountRoot: '/mnt/drover' });
  for (const id of datasets) await store.createDataset(id, { maximumSize: null });
  const runtime = new FakeContainerRuntime();
  const web = app('web', { volumes: datasets.map((id, i) => ({ dataset_id: id, mountpoint: `/data${i}` })) });
  await runtime.createAndStart(containerSpec(web, { nodeUuid: NODE_A, address: ADDRESS_A, generation: 0, mountpoints: new Map(datasets.map((id) => [id, `/mnt/drover/${id}`])) }));
  const control = new FakeMigrationControl();
  const m = migration({ phase: options.phase ?? 'pending', dataset_ids: datasets, generation: 3 });
  control.add({ ...m, generation: options.generation ?? m.generation });

  /** What each replicate call saw, and the scripted answers (bytes, or an error to throw). */
  const sends: { datasetId: string; readonly: boolean; appRunning: boolean }[] = [];
  const deferred: boolean[] = [];
  const settled: string[] = [];
  const opened: { datasetId: string; appRunning: boolean; phase: string }[] = [];
  const script: (number | DroverError)[] = [];
  const replicate = async (o: ReplicateOptions): Promise<ReplicateResult> => {
    const ds = await store.getDataset(o.datasetId);
    sends.push({ datasetId: o.datasetId, readonly: ds!.readonly, appRunning: runtime.byName('drover-web')?.running ?? false });
    deferred.push(o.deferSettle === true);
    await options.during?.(o, sends.length, store);
    const next = script.shift() ?? 1_000;
    if (next instanceof DroverError) throw next;
    return { snapshot: `drover-s${sends.length}`, guid: String(1000 + sends.length), bytes: next, incremental: sends.length > 1, baseSnapshot: null, resumed: false };
  };
  const stages: JobStage[] = [];
  const peer = { id: NODE_B } as Peer;
  const job = new SourceJob(
    m,
    {
      nodeUuid: NODE_A,
      control,
      clock: options.clock ?? systemClock,
      log: silentLogger(),
      datasets: store,
      runtime,
      replicate,
      prepareReceive: async (_peer, datasetId) => {
        opened.push({ datasetId, appRunning: runtime.byName('drover-web')?.running ?? false, phase: control.phases.at(-1) ?? '' });
        await options.opening?.(datasetId);
      },
      settle: async (_peer, datasetId) => {
        settled.push(`${datasetId} after ${control.phases.at(-1)}`);
      },
      peers: { peerFor: async () => peer, close: async () => {} },
      nodeOf: (uuid) => (uuid === NODE_B ? node(NODE_B, '127.0.0.12') : undefined),
      applicationOf: (name) => (name === 'web' && options.hook ? { ...web, move: { before_stop: { command: options.hook, timeout_seconds: 5 } } } : undefined),
      tuning: { ...DEFAULT_TUNING, smallMs: 0, ackWaitMs: 100, cutoverPostMs: 300, verdictPostMs: 300, progressIntervalMs: options.progressIntervalMs ?? DEFAULT_TUNING.progressIntervalMs },
      stopTimeoutSeconds: 1,
      onStage: (s) => stages.push(s),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.phaseOf ? { phaseOf: options.phaseOf } : {}),
    },
    new AbortController().signal,
  );
  return { store, runtime, control, m, job, sends, deferred, settled, opened, script, stages };
}

describe('the source job of a migration', () => {
  it('estimates the first round from the size read once its stream began, not the lagging one read before', async () => {
    const w = await world({
      progressIntervalMs: 0,
      during: async (o, n, store) => {
        if (n !== 1) return;
        // What zfs-fuse shows once the round's snapshot synced a transaction group.
        store.write(o.datasetId, 40 * MiB);
        o.onProgress?.({ datasetId: o.datasetId, bytes: 1 * MiB, elapsedMs: 10, bytesPerSecond: 100 * MiB });
        await new Promise((r) => setTimeout(r, 10));
        o.onProgress?.({ datasetId: o.datasetId, bytes: 2 * MiB, elapsedMs: 20, bytesPerSecond: 100 * MiB });
        await new Promise((r) => setTimeout(r, 10));
      },
    });
    w.script.push(40 * MiB, 4_096, 4_096);
    expect(await w.job.run()).toBe('handed-off');
    // The two posts made while round 1 streamed (the round's end is posted after them).
    const progress = w.control.updates.filter((u) => u.phase === 'pre-copy' && u.round === 1 && u.round_bytes_sent !== undefined && u.round_bytes_sent < 40 * MiB);
    expect(progress.map((u) => u.bytes_sent)).toEqual([1 * MiB, 2 * MiB]);
    // The round's own figures beside the running totals (round 1: the same bytes).
    expect(progress.map((u) => u.round_bytes_sent)).toEqual([1 * MiB, 2 * MiB]);
    expect(progress[1]!.round_bytes_total).toBeGreaterThanOrEqual(40 * MiB);
    // The first post still had the old figure; the next one the size the round really sends.
    expect(progress[0]!.bytes_total).toBeLessThan(1 * MiB + 1 * MiB);
    expect(progress[1]!.bytes_total).toBeGreaterThanOrEqual(40 * MiB);
  });

  it('opens the final receive of every dataset on the target during cutover, before it stops the application', async () => {
    const w = await world({ datasets: [DS_1, DS_2] });
    w.script.push(1 * MiB, 4_096, 4_096, 4_096);
    expect(await w.job.run()).toBe('handed-off');
    expect(w.opened).toEqual([
      { datasetId: DS_1, appRunning: true, phase: 'cutover' },
      { datasetId: DS_2, appRunning: true, phase: 'cutover' },
    ]);
  });

  it('does not wait long for a target that is slow to open the final receive, nor fail the move when it cannot', async () => {
    const clock = new FakeClock();
    const slow = await world({ clock, opening: () => new Promise(() => {}) });
    slow.script.push(1 * MiB, 4_096);
    const run = slow.job.run();
    for (let i = 0; i < 100 && slow.control.phases.at(-1) !== 'handoff'; i++) {
      await clock.advance(100);
      await settle();
    }
    expect(await run).toBe('handed-off');
    const failing = await world({ opening: () => Promise.reject(new DroverError('DROVER_SSH_DISCONNECTED', 'gone', { retryable: true })) });
    failing.script.push(1 * MiB, 4_096);
    expect(await failing.job.run()).toBe('handed-off');
  });

  it('pre-copies while the application runs, then stops it, sends the final delta, makes the data read-only and hands off', async () => {
    const w = await world();
    w.script.push(100 * MiB, 1 * MiB, 4_096);
    expect(await w.job.run()).toBe('handed-off');
    expect(w.control.phases).toEqual(['pre-copy', 'cutover', 'handoff']);
    // The final send starts once the application stopped (read-only is set beside it).
    expect(w.sends).toEqual([
      { datasetId: DS_1, readonly: false, appRunning: true },
      { datasetId: DS_1, readonly: false, appRunning: true },
      { datasetId: DS_1, readonly: expect.any(Boolean), appRunning: false },
    ]);
    expect((await w.store.getDataset(DS_1))?.readonly).toBe(true);
    // Only the final send defers its bookkeeping, and it is settled after handoff.
    expect(w.deferred).toEqual([false, false, true]);
    expect(w.settled).toEqual([`${DS_1} after handoff`]);
    expect(w.stages).toEqual(['pre-copy', 'cutover', 'handed-off']);
    const record = w.control.records.get(w.m.id)!;
    expect({ round: record.round, bytes_sent: record.bytes_sent }).toEqual({ round: 2, bytes_sent: 101 * MiB + 4_096 });
    // The stopped container stays for the ordinary planner, which removes it once the view says handoff.
    expect(w.runtime.byName('drover-web')?.running).toBe(false);
  });

  it("settles the final send's holds only once the view shows the target's release (its start is the client's pause)", async () => {
    let view: MigrationPhase | null = 'handoff';
    const w = await world({ phaseOf: () => view });
    w.script.push(100 * MiB, 1 * MiB, 4_096);
    let ended = false;
    const run = w.job.run().finally(() => (ended = true));
    while (!w.stages.includes('handed-off')) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 300));
    expect(w.settled).toEqual([]);
    expect(ended).toBe(false);
    view = 'release';
    expect(await run).toBe('handed-off');
    expect(w.settled).toEqual([`${DS_1} after handoff`]);
  });

  it('settles at once when the view no longer lists the migration (it finished while the job looked away)', async () => {
    const w = await world({ phaseOf: () => null });
    w.script.push(100 * MiB, 1 * MiB, 4_096);
    expect(await w.job.run()).toBe('handed-off');
    expect(w.settled).toEqual([`${DS_1} after handoff`]);
  });

  it('stops the application at the cutover even when it was listed stopped and a restart policy started it since', async () => {
    const w = await world();
    w.script.push(100 * MiB, 1 * MiB, 4_096);
    const container = w.runtime.byName('drover-web')!;
    // The cutover's listing sees it crashed; Docker restarts it before the stop.
    const list = w.runtime.listContainers.bind(w.runtime);
    w.runtime.listContainers = async (nodeUuid) => {
      const listed = await list(nodeUuid);
      if (w.control.phases.at(-1) === 'cutover' && listed.some((c) => c.name === 'drover-web' && !c.running)) await w.runtime.restart(container.id);
      return listed;
    };
    w.sends.length = 0;
    const run = w.job.run();
    // Crashed once the pre-copy is under way, before the cutover lists it.
    w.runtime.crash('drover-web');
    expect(await run).toBe('handed-off');
    // The final send ran with nothing writing.
    expect(w.sends.at(-1)).toMatchObject({ appRunning: false });
    expect(w.runtime.byName('drover-web')?.running).toBe(false);
  });

  it('looks up the container to stop and reads its process ahead beside the pre-copy rounds, before the cutover is posted', async () => {
    const w = await world();
    w.script.push(100 * MiB, 1 * MiB, 4_096);
    const seen: string[] = [];
    const list = w.runtime.listContainers.bind(w.runtime);
    w.runtime.listContainers = async (nodeUuid) => {
      seen.push(`list after ${w.control.phases.at(-1)}`);
      return list(nodeUuid);
    };
    Object.assign(w.runtime, { prepareStop: async () => void seen.push(`prepare after ${w.control.phases.at(-1)}, running ${w.runtime.byName('drover-web')?.running}`) });
    const stop = w.runtime.stopProcesses.bind(w.runtime);
    w.runtime.stopProcesses = async (id) => {
      seen.push(`stop after ${w.control.phases.at(-1)}`);
      return stop(id);
    };
    expect(await w.job.run()).toBe('handed-off');
    // A listing beside each of the two pre-copy rounds, none inside the cutover: the stop uses the last round's.
    expect(seen).toEqual([...Array(2).fill(['list after pre-copy', 'prepare after pre-copy, running true']).flat(), 'stop after cutover']);
    expect(w.sends.at(-1)).toMatchObject({ appRunning: false });
  });

  it('stops the container that replaced the one it read ahead, before the final snapshot', async () => {
    const w = await world();
    w.script.push(100 * MiB, 1 * MiB, 4_096);
    const first = w.runtime.byName('drover-web')!;
    // Between the read-ahead and the cutover, the ordinary planner replaces the container.
    Object.assign(w.runtime, {
      prepareStop: async () => {
        await w.runtime.stop(first.id);
        await w.runtime.remove(first.id);
        await w.runtime.createAndStart(first.spec);
      },
    });
    expect(await w.job.run()).toBe('handed-off');
    const second = w.runtime.byName('drover-web')!;
    expect(second.id).not.toBe(first.id);
    expect(second.running).toBe(false);
    expect(w.sends.at(-1)).toMatchObject({ appRunning: false });
    expect(w.control.phases).toEqual(['pre-copy', 'cutover', 'handoff']);
  });

  it('times the pre-copy, the cutover and its pause in the agent\'s metrics', async () => {
    const metrics = new PromAgentMetrics({ defaultMetrics: false });
    const w = await world({ metrics });
    w.script.push(100 * MiB, 1 * MiB, 4_096);
    expect(await w.job.run()).toBe('handed-off');
    const text = await metrics.text();
    expect(sampleValue(text, 'drover_agent_cutover_pause_seconds_count')).toBe(1);
    expect(sampleValue(text, 'drover_agent_migration_phase_duration_seconds_count', { phase: 'pre-copy' })).toBe(1);
    expect(sampleValue(text, 'drover_agent_migration_phase_duration_seconds_count', { phase: 'cutover' })).toBe(1);
    const pause = sampleValue(text, 'drover_agent_cutover_pause_seconds_sum')!;
    // The fake world takes well under a millisecond: the pause is there, and within the cutover.
    expect(pause).toBeGreaterThanOrEqual(0);
    expect(pause).toBeLessThanOrEqual(sampleValue(text, 'drover_agent_migration_phase_duration_seconds_sum', { phase: 'cutover' })!);
  });

  it('runs the before_stop hook in the running container once the rounds are small, then one more round, then stops it', async () => {
    const w = await world({ hook: ['psql', '-c', 'CHECKPOINT'] });
    const seen: string[] = [];
    w.runtime.execHandler = (_id, command) => {
      seen.push(`exec ${command.join(' ')} after ${w.sends.length} send(s), running ${w.runtime.byName('drover-web')?.running}`);
      return 0;
    };
    w.script.push(100 * MiB, 1 * MiB, 8 * MiB, 4_096);
    expect(await w.job.run()).toBe('handed-off');
    expect(seen).toEqual(['exec psql -c CHECKPOINT after 2 send(s), running true']);
    // The round after the hook still runs beside the application; only the final delta after the stop.
    expect(w.sends.map((s) => s.appRunning)).toEqual([true, true, true, false]);
    expect(w.control.phases).toEqual(['pre-copy', 'cutover', 'handoff']);
  });

  it('moves on when the before_stop hook fails: the stop alone makes the data consistent', async () => {
    const w = await world({ hook: ['false'] });
    w.runtime.execHandler = () => 1;
    w.script.push(1_000, 10, 10);
    expect(await w.job.run()).toBe('handed-off');
    // One small round, the hook (failed), the round after it, the final delta.
    expect(w.sends.map((s) => s.appRunning)).toEqual([true, true, false]);
  });

  it('sends every dataset of the application in each round and in the final delta', async () => {
    const w = await world({ datasets: [DS_1, DS_2] });
    w.script.push(1_000, 1_000, 10, 10);
    expect(await w.job.run()).toBe('handed-off');
    expect(w.sends.map((s) => [s.datasetId, s.readonly])).toEqual([
      [DS_1, false],
      [DS_2, false],
      [DS_1, true],
      [DS_2, true],
    ]);
  });

  it('aborts back to the source when the final send keeps failing: removes the stopped container and posts failed, never handoff', async () => {
    const w = await world();
    const cut = new DroverError('DROVER_SSH_DISCONNECTED', 'connection lost', { retryable: true });
    w.script.push(1_000, cut, cut);
    expect(await w.job.run()).toBe('aborted');
    expect(w.control.phases).toEqual(['pre-copy', 'cutover', 'failed']);
    expect(w.control.records.get(w.m.id)!.error).toBe(`final send of dataset ${DS_1}: connection lost`);
    expect(w.runtime.byName('drover-web')).toBeUndefined();
  });

  it('restores the application when the control service gives up during cutover (cancelled, or past its deadline): never hands off', async () => {
    const w = await world({
      during: async (_o, n) => {
        if (n === 2) w.control.failByControl(w.m.id, 'give-up', 'cancelled by the operator');
      },
    });
    expect(await w.job.run()).toBe('aborted');
    expect(w.control.phases).toEqual(['pre-copy', 'cutover', 'failed by control']);
    expect(w.control.updates.map((u) => u.phase)).toContain('handoff');
    // The stopped container is removed, so the ordinary planner starts it again here whatever its restart policy.
    expect(w.runtime.byName('drover-web')).toBeUndefined();
    expect(w.control.records.get(w.m.id)).toMatchObject({ phase: 'failed', error: 'cancelled by the operator' });
  });

  it('keeps the application running when the control service gives up during pre-copy', async () => {
    const w = await world({
      during: async (_o, n) => {
        if (n === 1) w.control.failByControl(w.m.id, 'give-up', 'no progress for 121 s in pre-copy');
      },
    });
    expect(await w.job.run()).toBe('failed');
    expect(w.control.phases).toEqual(['pre-copy', 'failed by control']);
    expect(w.runtime.byName('drover-web')?.running).toBe(true);
    expect(w.stages).not.toContain('handed-off');
  });

  it('fails a migration whose pre-copy meets a permanent error, leaving the application running', async () => {
    const w = await world();
    w.script.push(new DroverError('DROVER_ZFS_NO_SPACE', 'out of space on the target'));
    expect(await w.job.run()).toBe('aborted');
    expect(w.control.phases).toEqual(['pre-copy', 'failed']);
    expect(w.runtime.byName('drover-web')?.running).toBe(true);
  });

  it('aborts a migration it finds in cutover when it starts (the agent restarted), without sending', async () => {
    const w = await world({ phase: 'cutover' });
    w.runtime.crash('drover-web', 0);
    expect(await w.job.run()).toBe('aborted');
    expect(w.sends).toEqual([]);
    expect(w.control.phases).toEqual(['failed']);
    expect(w.runtime.byName('drover-web')).toBeUndefined();
  });

  it('keeps a still-running application when it aborts a cutover it finds on start', async () => {
    const w = await world({ phase: 'cutover' });
    expect(await w.job.run()).toBe('aborted');
    expect(w.runtime.byName('drover-web')?.running).toBe(true);
  });

  it('resumes pre-copy it finds on start (the application never stopped)', async () => {
    const w = await world({ phase: 'pre-copy' });
    expect(await w.job.run()).toBe('handed-off');
    expect(w.control.phases).toEqual(['cutover', 'handoff']);
  });

  it('counts a handoff whose answer was lost as handed off (the retry finds the record there)', async () => {
    const w = await world();
    w.control.loseAnswerOf = 'handoff';
    expect(await w.job.run()).toBe('handed-off');
    expect(w.control.phases).toEqual(['pre-copy', 'cutover', 'handoff']);
  });

  it('stops without a verdict, the application stopped and claimed, when the control service cannot take the handoff', async () => {
    // The posts' retries and deadlines (cutoverPostMs, verdictPostMs) pass in fake time.
    const clock = new FakeClock();
    const w = await world({ clock });
    const job = clock.run(w.job.run());
    // Unreachable from the final send on: cutover was accepted, handoff never is.
    const original = w.control.update.bind(w.control);
    w.control.update = async (id, u) => {
      if (u.phase === 'handoff') w.control.unreachable = true;
      return original(id, u);
    };
    expect(await job).toBe('stopped');
    expect(w.job.stage).toBe('cutover');
    expect(w.control.phases).toEqual(['pre-copy', 'cutover']);
    expect(w.runtime.byName('drover-web')?.running).toBe(false);
  });

  it('does nothing for a record that is already handed off', async () => {
    const w = await world({ phase: 'handoff' });
    expect(await w.job.run()).toBe('handed-off');
    expect(w.sends).toEqual([]);
  });

  it('stops at a stale generation', async () => {
    const w = await world({ generation: 4 });
    expect(await w.job.run()).toBe('stopped');
    expect(w.sends).toEqual([]);
    expect(w.runtime.byName('drover-web')?.running).toBe(true);
  });
});

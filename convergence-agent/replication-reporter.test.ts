import { describe, expect, it } from 'vitest';
import { DroverError } from '#common/errors.ts';
import { silentLogger } from '#common/log.ts';
import type { ReplicaStatus, ReplicationReport } from '#common/model.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { ReplicationReporter } from './replication-reporter.ts';
import { DS_1, NODE_A, NODE_B } from './testing/fixtures.ts';

const status = (snapshot: string): ReplicaStatus => ({
  dataset_id: DS_1,
  replica: NODE_B,
  state: 'ok',
  newest_snapshot: snapshot,
  newest_snapshot_created_at: 1,
  lag_seconds: 0.1,
  bytes_sent_total: 1,
  last_success_at: 1,
  last_error: null,
});

/** A reporter whose sends end when the test says; `current` is the scheduler's status. */
function world() {
  const clock = new FakeClock();
  const current = { seq: 1, snapshot: 's1' };
  const sent: ReplicationReport[] = [];
  const pending: Array<{ ok(): void; fail(): void }> = [];
  const reporter = new ReplicationReporter({
    identity: { uuid: NODE_A, era: 'e1' },
    status: () => ({ seq: current.seq, statuses: [status(current.snapshot)] }),
    send: (report) =>
      new Promise((resolve, reject) => {
        sent.push(report);
        pending.push({ ok: () => resolve({ merged: true }), fail: () => reject(new DroverError('DROVER_CONTROL_UNREACHABLE', 'down', { retryable: true })) });
      }),
    clock,
    log: silentLogger(),
    retries: 2,
  });
  const change = (seq: number, snapshot: string): void => {
    current.seq = seq;
    current.snapshot = snapshot;
    reporter.changed();
  };
  return { clock, sent, pending, reporter, change };
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 50; i++) await Promise.resolve();
};

describe('ReplicationReporter', () => {
  it('sends the status at once, one report at a time, and after the one in flight only the latest status', async () => {
    const w = world();
    w.change(2, 's2');
    await flush();
    expect(w.sent.map((r) => [r.seq, r.replication[0]!.newest_snapshot])).toEqual([[2, 's2']]);
    expect(w.sent[0]).toMatchObject({ uuid: NODE_A, era: 'e1' });
    w.change(3, 's3');
    w.change(4, 's4');
    await flush();
    expect(w.sent).toHaveLength(1);
    w.pending.shift()!.ok();
    await flush();
    expect(w.sent.map((r) => r.seq)).toEqual([2, 4]);
    w.pending.shift()!.ok();
    await w.reporter.idle();
  });

  it('sends nothing for a status whose seq was delivered already, by itself or by a full report', async () => {
    const w = world();
    w.change(2, 's2');
    await flush();
    w.pending.shift()!.ok();
    await w.reporter.idle();
    w.reporter.changed();
    await flush();
    w.reporter.reported(3);
    w.change(3, 's3');
    await flush();
    expect(w.sent.map((r) => r.seq)).toEqual([2]);
  });

  it('retries a failed report with backoff and the status as it is then, and gives up after the bounded retries', async () => {
    const w = world();
    w.change(2, 's2');
    await flush();
    w.pending.shift()!.fail();
    await flush();
    w.change(3, 's3');
    await w.clock.advance(200);
    await flush();
    expect(w.sent.map((r) => r.seq)).toEqual([2, 3]);
    w.pending.shift()!.fail();
    await flush();
    await w.clock.advance(400);
    await flush();
    expect(w.sent).toHaveLength(3);
    w.pending.shift()!.fail();
    await w.reporter.idle();
    await w.clock.advance(10_000);
    await flush();
    expect(w.sent).toHaveLength(3);
    // The next change is reported again.
    w.change(4, 's4');
    await flush();
    expect(w.sent.map((r) => r.seq)).toEqual([2, 3, 3, 4]);
    w.pending.shift()!.ok();
    await w.reporter.idle();
  });

  it('ends a retry wait when stopped, and sends nothing after', async () => {
    const w = world();
    w.change(2, 's2');
    await flush();
    w.pending.shift()!.fail();
    await flush();
    await w.reporter.stop();
    w.change(3, 's3');
    await w.clock.advance(5_000);
    await flush();
    expect(w.sent).toHaveLength(1);
  });
});

import { describe, expect, it } from 'vitest';
import type { CommandResult, CommandRunner, RunOptions } from './command.ts';
import { SnapshotGate } from './snapshot-gate.ts';
import { ZfsStore } from './zfs.ts';

/** A promise and its resolver. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('the snapshot gate', () => {
  it('runs shared commands beside each other', async () => {
    const gate = new SnapshotGate();
    const a = deferred();
    const b = deferred();
    const first = gate.beside(() => a.promise);
    const second = gate.beside(() => b.promise);
    await tick();
    expect(gate.running).toEqual({ shared: 2, exclusive: false, waiting: 0 });
    a.resolve();
    b.resolve();
    await Promise.all([first, second]);
    expect(gate.running).toEqual({ shared: 0, exclusive: false, waiting: 0 });
  });

  it('starts a snapshot only once the shared commands in flight have ended', async () => {
    const gate = new SnapshotGate();
    const hold = deferred();
    const order: string[] = [];
    const holding = gate.beside(async () => {
      await hold.promise;
      order.push('hold ended');
    });
    const snapshot = gate.alone(async () => {
      order.push('snapshot began');
    });
    await tick();
    expect(order).toEqual([]);
    hold.resolve();
    await Promise.all([holding, snapshot]);
    expect(order).toEqual(['hold ended', 'snapshot began']);
  });

  it('makes a hold that arrives while a snapshot waits or runs wait for it (no starvation)', async () => {
    const gate = new SnapshotGate();
    const first = deferred();
    const snap = deferred();
    const order: string[] = [];
    const a = gate.beside(async () => {
      await first.promise;
      order.push('first hold ended');
    });
    const s = gate.alone(async () => {
      order.push('snapshot began');
      await snap.promise;
      order.push('snapshot ended');
    });
    const b = gate.beside(async () => {
      order.push('second hold began');
    });
    await tick();
    expect(gate.running.waiting).toBe(2);
    first.resolve();
    await tick();
    expect(order).toEqual(['first hold ended', 'snapshot began']);
    snap.resolve();
    await Promise.all([a, s, b]);
    expect(order).toEqual(['first hold ended', 'snapshot began', 'snapshot ended', 'second hold began']);
  });

  it('lets the next command in when the one holding the gate failed', async () => {
    const gate = new SnapshotGate();
    await expect(gate.alone(() => Promise.reject(new Error('zfs said no')))).rejects.toThrow('zfs said no');
    await expect(gate.beside(async () => 'held')).resolves.toBe('held');
    expect(gate.running).toEqual({ shared: 0, exclusive: false, waiting: 0 });
  });
});

describe('ZfsStore with the snapshot gate', () => {
  const id = '6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b';
  const ds = `tank/drover/${id}`;

  /** Answers every zfs command after a few event-loop turns and records which pool-changing ones overlapped. */
  class OverlapRunner implements CommandRunner {
    readonly inFlight = new Set<string>();
    readonly overlaps: string[] = [];

    async run(_file: string, args: readonly string[], _options?: RunOptions): Promise<CommandResult> {
      const verb = args[0]!;
      const changing = verb !== 'get';
      if (changing) {
        if (this.inFlight.size > 0 && (verb === 'snapshot' || this.inFlight.has('snapshot'))) this.overlaps.push(`${verb} beside ${[...this.inFlight].join(',')}`);
        this.inFlight.add(verb);
      }
      for (let i = 0; i < 5; i++) await tick();
      if (changing) this.inFlight.delete(verb);
      const snaps = ['drover-20261207T000000000Z-0001', 'drover-20261207T000001000Z-0002'];
      const stdout = verb === 'get' ? snaps.map((s, i) => `${ds}@${s}\tguid\t${100 + i}\n${ds}@${s}\tcreatetxg\t${10 + i}\n${ds}@${s}\tuserrefs\t0\n`).join('') : '';
      return { exitCode: 0, signal: null, stdout, stderr: '' };
    }

    spawn(): never {
      throw new Error('not used');
    }
  }

  it('never runs a zfs snapshot beside a hold, release or destroy of the same pool', async () => {
    const runner = new OverlapRunner();
    const store = new ZfsStore({ pool: 'tank', runner });
    await Promise.all([
      store.hold(id, 'drover-20261207T000000000Z-0001', 'drover-base-1234abcd'),
      store.createSnapshot(id, 'drover-20261207T000001000Z-0002'),
      store.release(id, 'drover-20261207T000000000Z-0001', 'drover-step-1234abcd'),
      store.hold(id, 'drover-20261207T000000000Z-0001', 'drover-step-5678abcd'),
    ]);
    expect(runner.overlaps).toEqual([]);
  });
});

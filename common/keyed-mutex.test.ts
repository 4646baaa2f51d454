import { describe, expect, it } from 'vitest';
import { KeyedMutex } from './keyed-mutex.ts';
import { FakeClock } from './testing/fake-clock.ts';

const transfers = () => new KeyedMutex({ busyCode: 'DROVER_TRANSFER_BUSY', abortedCode: 'DROVER_TRANSFER_ABORTED', what: 'transfer' });

describe('the keyed mutex', () => {
  it('runs holders of one key one after the other, in order, and other keys at once', async () => {
    const mutex = new KeyedMutex();
    const events: string[] = [];
    const job = (key: string, name: string, ms: number) =>
      mutex.run(key, async () => {
        events.push(`${name}+`);
        await new Promise((r) => setTimeout(r, ms));
        events.push(`${name}-`);
      });
    await Promise.all([job('a', 'a1', 30), job('a', 'a2', 1), job('b', 'b1', 5)]);
    expect(events.indexOf('a1-')).toBeLessThan(events.indexOf('a2+'));
    expect(events.indexOf('b1+')).toBeLessThan(events.indexOf('a1-'));
    expect(mutex.isHeld('a')).toBe(false);
  });

  it('runs the next holder after one that threw, and passes the error to its caller', async () => {
    const mutex = new KeyedMutex();
    const failing = mutex.run('a', async () => {
      throw new Error('mount failed');
    });
    const next = mutex.run('a', async () => 'mounted');
    await expect(failing).rejects.toThrow('mount failed');
    await expect(next).resolves.toBe('mounted');
    expect(mutex.busy).toBe(0);
  });

  it('counts the keys held or waited for, and forgets a key once its last holder is done', async () => {
    const mutex = new KeyedMutex();
    const release = await mutex.acquire('a');
    const second = mutex.run('a', async () => mutex.busy);
    const other = mutex.run('b', async () => mutex.busy);
    expect(await other).toBe(2);
    release();
    expect(await second).toBe(1);
    expect(mutex.busy).toBe(0);
  });

  it('gives up waiting after the bound with a retryable busy error', async () => {
    const clock = new FakeClock();
    const mutex = new KeyedMutex({ busyCode: 'DROVER_TRANSFER_BUSY', abortedCode: 'DROVER_TRANSFER_ABORTED', what: 'transfer', clock });
    const release = await mutex.acquire('a');
    let outcome: unknown = 'waiting';
    const waiting = mutex.acquire('a', { waitMs: 20 }).catch((err: unknown) => (outcome = err));
    await clock.advance(19);
    expect(outcome).toBe('waiting');
    await clock.advance(1);
    await waiting;
    expect(outcome).toMatchObject({ code: 'DROVER_TRANSFER_BUSY', retryable: true, message: 'another transfer of a is running' });
    release();
    const again = await mutex.acquire('a', { waitMs: 20 });
    again();
  });

  it('stops waiting when aborted', async () => {
    const mutex = transfers();
    const release = await mutex.acquire('a');
    const controller = new AbortController();
    const waiting = mutex.acquire('a', { signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'DROVER_TRANSFER_ABORTED' });
    release();
    expect(mutex.isHeld('a')).toBe(false);
  });
});

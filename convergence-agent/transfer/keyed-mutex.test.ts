import { describe, expect, it } from 'vitest';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { KeyedMutex } from './keyed-mutex.ts';

describe('the keyed mutex', () => {
  it('runs holders of one key one after the other, in order, and other keys at once', async () => {
    const clock = new FakeClock();
    const mutex = new KeyedMutex(clock);
    const events: string[] = [];
    // Each holder works for `ms` of fake time.
    const job = (key: string, name: string, ms: number) =>
      mutex.run(key, async () => {
        events.push(`${name}+`);
        await clock.sleep(ms);
        events.push(`${name}-`);
      });
    await clock.run(Promise.all([job('a', 'a1', 30), job('a', 'a2', 1), job('b', 'b1', 5)]));
    expect(events.indexOf('a1-')).toBeLessThan(events.indexOf('a2+'));
    expect(events.indexOf('b1+')).toBeLessThan(events.indexOf('a1-'));
    expect(mutex.isHeld('a')).toBe(false);
  });

  it('gives up waiting after the bound with a retryable busy error', async () => {
    const clock = new FakeClock();
    const mutex = new KeyedMutex(clock);
    const release = await mutex.acquire('a');
    let outcome: unknown = 'waiting';
    const waiting = mutex.acquire('a', { waitMs: 20 }).catch((err: unknown) => (outcome = err));
    await clock.advance(19);
    expect(outcome).toBe('waiting');
    await clock.advance(1);
    await waiting;
    expect(outcome).toMatchObject({ code: 'DROVER_TRANSFER_BUSY', retryable: true });
    release();
    const again = await mutex.acquire('a', { waitMs: 20 });
    again();
  });

  it('stops waiting when aborted', async () => {
    const mutex = new KeyedMutex();
    const release = await mutex.acquire('a');
    const controller = new AbortController();
    const waiting = mutex.acquire('a', { signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'DROVER_TRANSFER_ABORTED' });
    release();
    expect(mutex.isHeld('a')).toBe(false);
  });
});

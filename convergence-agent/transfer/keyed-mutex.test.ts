import { describe, expect, it } from 'vitest';
import { KeyedMutex } from './keyed-mutex.ts';

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

  it('gives up waiting after the bound with a retryable busy error', async () => {
    const mutex = new KeyedMutex();
    const release = await mutex.acquire('a');
    await expect(mutex.acquire('a', { waitMs: 20 })).rejects.toMatchObject({ code: 'DROVER_TRANSFER_BUSY', retryable: true });
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

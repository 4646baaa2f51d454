import { describe, expect, it } from 'vitest';
import { backoffDelay, KeyedBackoff } from './backoff.ts';

describe('backoffDelay', () => {
  it('grows by the factor from the initial delay up to the cap', () => {
    const policy = { initialMs: 250, capMs: 2_000 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(policy, n))).toEqual([250, 500, 1_000, 2_000, 2_000, 2_000]);
    expect([1, 2, 3, 4].map((n) => backoffDelay({ initialMs: 100, factor: 4, capMs: 3_000 }, n))).toEqual([100, 400, 1_600, 3_000]);
  });

  it('stays at the cap however many attempts have failed', () => {
    expect(backoffDelay({ initialMs: 1_000, capMs: 60_000 }, 5_000)).toBe(60_000);
  });

  it('takes up to the jitter fraction off at random, never more, and asks for randomness only with jitter', () => {
    const policy = { initialMs: 100, capMs: 5_000, jitter: 0.5 };
    expect(backoffDelay(policy, 1, () => 0)).toBe(50);
    expect(backoffDelay(policy, 1, () => 0.999)).toBe(100);
    expect(backoffDelay(policy, 10, () => 0.5)).toBe(3_750);
    const never = (): number => {
      throw new Error('random called without jitter');
    };
    expect(backoffDelay({ initialMs: 100, capMs: 5_000 }, 3, never)).toBe(400);
  });
});

describe('KeyedBackoff', () => {
  it('holds a failed key back for its delay, longer after each failure, and forgets it on success', () => {
    const keys = new KeyedBackoff<string>({ initialMs: 1_000, capMs: 4_000 });
    expect(keys.failed('a', 0, 'boom')).toEqual({ failures: 1, delayMs: 1_000, retryAt: 1_000 });
    expect(keys.held('a', 400)).toEqual({ failures: 1, waitMs: 600, detail: 'boom' });
    expect(keys.held('a', 1_000)).toBeNull();
    expect(keys.failed('a', 1_000, 'again').delayMs).toBe(2_000);
    expect(keys.failed('a', 3_000, 'again').delayMs).toBe(4_000);
    expect(keys.failed('a', 7_000, 'again').delayMs).toBe(4_000);
    keys.succeeded('a');
    expect(keys.held('a', 7_001)).toBeNull();
    expect(keys.failed('a', 8_000, 'new').failures).toBe(1);
  });

  it('keeps only the keys it is told to retain', () => {
    const keys = new KeyedBackoff({ initialMs: 1_000, capMs: 4_000 });
    keys.failed('a', 0, undefined);
    keys.failed('b', 0, undefined);
    keys.retain(new Set(['b']));
    expect(keys.held('a', 1)).toBeNull();
    expect(keys.held('b', 1)?.failures).toBe(1);
  });
});

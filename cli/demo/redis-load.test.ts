import { describe, expect, it } from 'vitest';
import { longestGapWithin } from './redis-load.ts';

describe('longestGapWithin', () => {
  const acks = [0, 10, 20, 900, 910, 1500, 1510];

  it('finds the longest gap between acknowledgements that overlaps the window', () => {
    expect(longestGapWithin(acks, 880, 905)).toBe(880); // 20 → 900 overlaps it
    expect(longestGapWithin(acks, 1000, 1200)).toBe(590); // 910 → 1500 spans it
    expect(longestGapWithin(acks, 0, 15)).toBe(10);
  });

  it('is 0 without two acknowledgements around the window', () => {
    expect(longestGapWithin([5], 0, 10)).toBe(0);
    expect(longestGapWithin(acks, 2000, 3000)).toBe(0);
  });
});

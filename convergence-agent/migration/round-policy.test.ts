import { describe, expect, it } from 'vitest';
import { afterRound, bytesTotal, progressDue, rateOf, type RoundPolicy } from './round-policy.ts';

const MiB = 1024 * 1024;
const policy: RoundPolicy = { smallBytes: 8 * MiB, smallMs: 500, maxRounds: 4, maxMs: 60_000 };

describe('pre-copy round policy', () => {
  it('goes on after a large first round', () => {
    expect(afterRound([{ bytes: 256 * MiB, ms: 3_000 }], 3_000, policy)).toEqual({ next: 'round' });
  });

  it('cuts over after a round below the byte threshold', () => {
    expect(afterRound([{ bytes: 256 * MiB, ms: 3_000 }, { bytes: 2 * MiB, ms: 900 }], 4_000, policy)).toEqual({ next: 'cutover', why: 'small' });
  });

  it('cuts over after a round that streamed for less than the time threshold', () => {
    expect(afterRound([{ bytes: 256 * MiB, ms: 3_000 }, { bytes: 20 * MiB, ms: 300 }], 4_000, policy)).toEqual({ next: 'cutover', why: 'small' });
  });

  it('cuts over at once when the first (full) round is already small', () => {
    expect(afterRound([{ bytes: 100_000, ms: 200 }], 200, policy)).toEqual({ next: 'cutover', why: 'small' });
  });

  it('cuts over when a delta stops shrinking', () => {
    const rounds = [
      { bytes: 256 * MiB, ms: 3_000 },
      { bytes: 40 * MiB, ms: 800 },
      { bytes: 41 * MiB, ms: 820 },
    ];
    expect(afterRound(rounds, 5_000, policy)).toEqual({ next: 'cutover', why: 'not-shrinking' });
  });

  it('goes on while each delta shrinks', () => {
    const rounds = [
      { bytes: 256 * MiB, ms: 3_000 },
      { bytes: 60 * MiB, ms: 1_000 },
      { bytes: 30 * MiB, ms: 700 },
    ];
    expect(afterRound(rounds, 5_000, policy)).toEqual({ next: 'round' });
  });

  it('stops at the maximum number of rounds', () => {
    const rounds = [400, 200, 100, 50].map((m) => ({ bytes: m * MiB, ms: 5_000 }));
    expect(afterRound(rounds, 20_000, policy)).toEqual({ next: 'cutover', why: 'max-rounds' });
  });

  it('stops when pre-copy has taken its maximum time', () => {
    expect(afterRound([{ bytes: 900 * MiB, ms: 61_000 }], 61_000, policy)).toEqual({ next: 'cutover', why: 'max-time' });
  });
});

describe('progress figures', () => {
  it('estimates a first round by the referenced bytes and later ones by the previous delta', () => {
    expect(bytesTotal({ sentBeforeRound: 0, sentInRound: 10, referencedBytes: 1_000, rounds: [] })).toBe(1_000);
    expect(bytesTotal({ sentBeforeRound: 1_000, sentInRound: 10, referencedBytes: 1_000, rounds: [{ bytes: 1_000, ms: 1 }] })).toBe(2_000);
  });

  it('never shows a total below what was sent', () => {
    expect(bytesTotal({ sentBeforeRound: 0, sentInRound: 1_500, referencedBytes: 1_000, rounds: [] })).toBe(1_500);
  });

  it('rates bytes per second, and nothing before time has passed', () => {
    expect(rateOf(2_000, 500)).toBe(4_000);
    expect(rateOf(2_000, 0)).toBeNull();
  });

  it('posts progress at most once per interval', () => {
    expect(progressDue(null, 5, 1_000)).toBe(true);
    expect(progressDue(1_000, 1_999, 1_000)).toBe(false);
    expect(progressDue(1_000, 2_000, 1_000)).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import type { Migration } from '#common/model.ts';
import { addSample, bar, eta, observedRate, phaseDoneLine, phaseSpans, progressLine, roundFigures, timelineLine } from './progress-view.ts';

const MiB = 1024 * 1024;
const T0 = 1_700_000_000_000;

function migration(over: Partial<Migration> = {}): Migration {
  return {
    id: '11111111-1111-4111-8111-111111111111',
    application: 'redis',
    dataset_ids: [],
    from: '22222222-2222-4222-8222-222222222222',
    to: '33333333-3333-4333-8333-333333333333',
    phase: 'pre-copy',
    generation: 1,
    round: 2,
    bytes_sent: 40 * MiB,
    bytes_total: 64 * MiB,
    rate_bytes_per_second: 2 * MiB,
    started_at: T0,
    updated_at: T0,
    cutover_started_at: null,
    cutover_ms: null,
    error: null,
    ...over,
  };
}

describe('the progress line of a move', () => {
  it('shows the current round against its own size, not the total of every round', () => {
    const m = migration({ round_bytes_sent: 8 * MiB, round_bytes_total: 32 * MiB });
    const line = progressLine(m, 4 * MiB, 1000, 120);
    expect(line).toMatch(/^pre-copy  round 2  \[█+░+\]  8\.0 MiB \/ 32 MiB   25%  4\.0 MiB\/s  ETA 6 s$/);
    expect(line).not.toContain('64');
  });

  it('fits the terminal by narrowing the bar, never below ten cells', () => {
    const m = migration({ round_bytes_sent: 8 * MiB, round_bytes_total: 32 * MiB });
    expect(progressLine(m, MiB, 0, 80).length).toBeLessThanOrEqual(80);
    expect(progressLine(m, MiB, 0, 20)).toContain(`[${'█'.repeat(3)}${'░'.repeat(7)}]`);
  });

  it('says an older agent\'s figures are the running totals of all rounds', () => {
    expect(progressLine(migration(), null, 0, 120)).toMatch(/round 2 \(all rounds\)  \[.*\]  40 MiB \/ 64 MiB   62%  -  ETA -$/);
  });

  it('shows outside pre-copy the phase, how long it has lasted and the bytes sent in all', () => {
    expect(progressLine(migration({ phase: 'cutover' }), null, 850)).toBe('cutover   850 ms  40 MiB sent in all');
    expect(progressLine(migration({ phase: 'pending', round: 0, bytes_sent: 0 }), null, 200)).toBe('pending   200 ms');
  });

  it('reads the round figures from the record, else its running totals', () => {
    expect(roundFigures(migration({ round_bytes_sent: 5, round_bytes_total: 9 }))).toEqual({ round: 2, sent: 5, total: 9, scope: 'round' });
    expect(roundFigures(migration())).toEqual({ round: 2, sent: 40 * MiB, total: 64 * MiB, scope: 'all' });
  });
});

describe('the rate and ETA', () => {
  it('measures the rate over the last seconds of the current round', () => {
    let samples = addSample([], { at: 0, round: 1, sent: 0 });
    for (let t = 1; t <= 10; t++) samples = addSample(samples, { at: t * 1000, round: 1, sent: t * MiB });
    expect(samples[0]!.at).toBe(4000);
    expect(observedRate(samples, null)).toBe(MiB);
  });

  it('starts again when a new round begins, with the record\'s rate until a second has been seen', () => {
    let samples = addSample([], { at: 0, round: 1, sent: 10 * MiB });
    samples = addSample(samples, { at: 500, round: 2, sent: 0 });
    expect(samples).toEqual([{ at: 500, round: 2, sent: 0 }]);
    expect(observedRate(samples, 123)).toBe(123);
    samples = addSample(samples, { at: 2500, round: 2, sent: 4 * MiB });
    expect(observedRate(samples, 123)).toBe(2 * MiB);
  });

  it('gives an ETA only with a rate', () => {
    expect(eta(10 * MiB, 2 * MiB)).toBe('5 s');
    expect(eta(100, 2 * MiB)).toBe('<1 s');
    expect(eta(10 * MiB, null)).toBe('-');
    expect(eta(300 * MiB, MiB)).toBe('5m00s');
  });

  it('fills the bar in proportion, clamped', () => {
    expect(bar(0.5, 10)).toBe('[█████░░░░░]');
    expect(bar(2, 4)).toBe('[████]');
    expect(bar(-1, 4)).toBe('[░░░░]');
  });
});

describe('the phase timeline', () => {
  const phases = [
    { phase: 'pre-copy' as const, at: T0 + 200 },
    { phase: 'cutover' as const, at: T0 + 12_600 },
    { phase: 'handoff' as const, at: T0 + 12_900 },
    { phase: 'release' as const, at: T0 + 14_000 },
    { phase: 'done' as const, at: T0 + 14_800 },
  ];

  it('comes from the record\'s phase times, starting with pending at started_at', () => {
    const spans = phaseSpans(migration({ phases, phase: 'done' }), []);
    expect(spans.map((s) => s.phase)).toEqual(['pending', 'pre-copy', 'cutover', 'handoff', 'release', 'done']);
    expect(timelineLine(spans)).toBe('pending 200 ms → pre-copy 12.4 s → cutover 300 ms → handoff 1.1 s → release 800 ms → done');
  });

  it('falls back to the phases this command saw when the record keeps none', () => {
    const spans = phaseSpans(migration(), [{ phase: 'pre-copy', at: 5 }]);
    expect(spans).toEqual([{ phase: 'pre-copy', start: 5, end: null }]);
  });

  it('sums the pre-copy rounds in its line and says the pause after the cutover', () => {
    const m = migration({ phases, phase: 'done', round: 3, bytes_sent: 40 * MiB, cutover_ms: 1400 });
    const [, pre, cut] = phaseSpans(m, []);
    expect(phaseDoneLine(pre!, m, 40 * MiB)).toBe('✓ pre-copy   12.4 s  3 rounds, 40 MiB at 3.2 MiB/s');
    expect(phaseDoneLine(cut!, m, null)).toBe('✓ cutover    300 ms  application paused 1.4 s in all (cutover to release)');
  });
});

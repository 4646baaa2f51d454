import { describe, expect, it } from 'vitest';
import type { MigrationPhase } from '#common/model.ts';
import { outcomeOf, sourceStart, targetStep } from './phases.ts';

const ALL: MigrationPhase[] = ['pending', 'pre-copy', 'cutover', 'handoff', 'release', 'done', 'failed'];

describe('the migration phase machine', () => {
  it('starts a source job by phase: resume pre-copy, abort a cutover nobody is running, nothing after handoff', () => {
    expect(Object.fromEntries(ALL.map((p) => [p, sourceStart(p)]))).toEqual({
      pending: { action: 'pre-copy', postPreCopy: true },
      'pre-copy': { action: 'pre-copy', postPreCopy: false },
      cutover: { action: 'abort-cutover' },
      handoff: { action: 'none', why: 'handed-off' },
      release: { action: 'none', why: 'handed-off' },
      done: { action: 'none', why: 'handed-off' },
      failed: { action: 'none', why: 'failed' },
    });
  });

  it('reads a refused step by the record: landed, handed off, failed, or stop', () => {
    expect(outcomeOf('handoff', 'handoff')).toBe('accepted');
    expect(outcomeOf('failed', 'handoff')).toBe('handed-off');
    expect(outcomeOf('failed', 'release')).toBe('handed-off');
    expect(outcomeOf('handoff', 'failed')).toBe('failed');
    expect(outcomeOf('cutover', 'pending')).toBe('stop');
  });

  it('posts release once ready after handoff, then done', () => {
    expect(targetStep('handoff', false)).toBeNull();
    expect(targetStep('handoff', true)).toBe('release');
    expect(targetStep('release', false)).toBe('done');
    expect(targetStep('cutover', true)).toBeNull();
    expect(targetStep('done', true)).toBeNull();
  });
});

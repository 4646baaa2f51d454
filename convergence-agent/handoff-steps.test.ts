import { describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { HandoffSteps } from './handoff-steps.ts';
import type { LocalObserved } from './plan/types.ts';
import { NODE_A, NODE_B, desired, migration } from './testing/fixtures.ts';

function steps(): HandoffSteps {
  return new HandoffSteps({
    nodeUuid: NODE_A,
    executor: { execute: async () => ({ applied: [], failed: [], problems: [], retryInMs: null }) } as never,
    health: { health: () => 'unknown', sync: () => {} },
    clock: new FakeClock(),
    log: silentLogger(),
    plan: () => ({ changes: [], blocked: [], recheckAfterMs: null, updates: [] }) as never,
  });
}

const observed = { datasets: [], containers: [] } as unknown as LocalObserved;
const at = (phase: 'cutover' | 'handoff', to = NODE_A, generation = 3) => desired({ migrations: [migration({ from: NODE_B, to, phase, generation })] });

describe('a handoff view arriving while a pass discovers', () => {
  it('is newly due when it hands a migration to this node off that the pass\'s view had not', () => {
    const s = steps();
    s.passed({ observed, containers: [], gates: {} }, [], at('cutover'));
    expect(s.newlyDue(at('cutover'), at('handoff'))).toBe(true);
  });

  it('is not due for a view without a new handoff here: the same phase, another node\'s handoff, or one the pass already had', () => {
    const s = steps();
    s.passed({ observed, containers: [], gates: {} }, [], at('cutover'));
    expect(s.newlyDue(at('cutover'), at('cutover'))).toBe(false);
    expect(s.newlyDue(at('cutover'), at('handoff', NODE_B))).toBe(false);
    expect(s.newlyDue(at('handoff'), at('handoff'))).toBe(false);
  });

  it('is not due before any pass finished (the steps need its observation) nor once its steps ran', () => {
    const s = steps();
    expect(s.newlyDue(at('cutover'), at('handoff'))).toBe(false);
    // A pass that planned with the handoff view took the steps itself.
    s.passed({ observed, containers: [], gates: {} }, [], at('handoff'));
    expect(s.newlyDue(at('cutover'), at('handoff'))).toBe(false);
    // A new generation of it is a new handoff.
    expect(s.newlyDue(at('cutover'), at('handoff', NODE_A, 4))).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { CLOCK_RATE_ERROR, earliestFailoverMs, failoverAfterMs, fencedWithinMs, fenceProblem, MIN_FAILOVER_MARGIN_MS, watchdogFencedWithinMs } from './fence-timing.ts';

describe('the fencing and failover timing argument', () => {
  it('has an agent with the default settings fenced 9.55 s after its last acknowledged report, before the earliest failover at 10.45 s', () => {
    const fenced = fencedWithinMs({ fenceAfterMs: 6000, stopTimeoutMs: 2000 });
    expect(fenced).toBeCloseTo(9550);
    expect(failoverAfterMs(10_000)).toBe(11_000);
    expect(earliestFailoverMs(10_000, 1000)).toBeCloseTo(10_450);
    expect(fenced).toBeLessThan(earliestFailoverMs(10_000, MIN_FAILOVER_MARGIN_MS));
    expect(fenceProblem({ fenceAfterMs: 6000, stopTimeoutMs: 2000 }, 10_000)).toBeNull();
  });

  it('names the fence that could end after the earliest failover, with both times', () => {
    expect(fenceProblem({ fenceAfterMs: 7000, stopTimeoutMs: 2000 }, 10_000)).toMatch(/ends up to 10600 ms .* earliest failover at 9975 ms/);
  });

  it('keeps every accepted setting safe on clocks that run apart by the allowed rate', () => {
    for (const ttl of [2000, 10_000, 30_000]) {
      for (let fenceAfter = 1000; fenceAfter < ttl; fenceAfter += 500) {
        const f = { fenceAfterMs: fenceAfter, stopTimeoutMs: 2000 };
        if (fenceProblem(f, ttl) !== null) continue;
        // Worst case: the agent's clock slow, the control service's fast, the report arriving at once.
        const agentFenced = fencedWithinMs(f);
        const controlActs = failoverAfterMs(ttl, MIN_FAILOVER_MARGIN_MS) / (1 + CLOCK_RATE_ERROR);
        expect(agentFenced).toBeLessThan(controlActs);
      }
    }
  });

  it('has the fence watchdog process done no later than the agent itself would be, for every setting', () => {
    expect(watchdogFencedWithinMs({ fenceAfterMs: 6000, stopTimeoutMs: 2000 })).toBe(9250);
    for (let fenceAfter = 1000; fenceAfter <= 30_000; fenceAfter += 500) {
      for (const stop of [0, 2000, 10_000]) {
        const f = { fenceAfterMs: fenceAfter, stopTimeoutMs: stop };
        expect(watchdogFencedWithinMs(f)).toBeLessThanOrEqual(fencedWithinMs(f));
      }
    }
  });
});

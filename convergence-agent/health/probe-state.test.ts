import { describe, expect, it } from 'vitest';
import { HealthCheck } from '#common/model.ts';
import { firstProbeAt, initialProbeState, nextProbe, nextProbeAt, recordProbe, START_CONNECT_INTERVAL_MS, START_FAST_MS, START_INTERVAL_MS, START_SLOW_INTERVAL_MS, type ProbeOutcome } from './probe-state.ts';

const check = HealthCheck.parse({ type: 'tcp', port: 80, initial_delay_seconds: 5, period_seconds: 2, failure_threshold: 3 });
const run = (outcomes: ProbeOutcome[]) =>
  outcomes.reduce((s, outcome) => recordProbe(s, { outcome, detail: outcome === 'failure' ? 'refused' : null }, check), initialProbeState);

describe('probe state (Kubernetes liveness semantics)', () => {
  it('stays starting until the first result', () => {
    expect(initialProbeState.status).toBe('starting');
    expect(run(['failure', 'failure']).status).toBe('starting');
  });

  it('is unhealthy only after failure_threshold consecutive failures', () => {
    expect(run(['success', 'failure', 'failure'])).toEqual({ status: 'healthy', consecutiveFailures: 2, lastDetail: 'refused' });
    expect(run(['success', 'failure', 'failure', 'failure'])).toEqual({ status: 'unhealthy', consecutiveFailures: 3, lastDetail: 'refused' });
  });

  it('is healthy again after one success, the failure count reset', () => {
    expect(run(['failure', 'failure', 'success', 'failure', 'failure'])).toMatchObject({ status: 'healthy', consecutiveFailures: 2 });
    expect(run(['failure', 'failure', 'failure', 'success'])).toEqual({ status: 'healthy', consecutiveFailures: 0, lastDetail: null });
  });

  it('changes nothing on an unknown result', () => {
    expect(run(['failure', 'failure', 'unknown', 'unknown'])).toMatchObject({ consecutiveFailures: 2, status: 'starting' });
  });

  it('probes a starting container often in its first seconds, less often after, and only on the period once it passed', () => {
    const started = 100_000;
    const due = started + 10_000;
    const exec = { type: 'exec' } as const;
    expect(nextProbe(initialProbeState, due, started + 60, started, exec)).toEqual({ at: started + 60 + START_INTERVAL_MS, counted: false });
    const late = started + START_FAST_MS + 1;
    expect(nextProbe(initialProbeState, due, late, started, exec)).toEqual({ at: late + START_SLOW_INTERVAL_MS, counted: false });
    expect(START_SLOW_INTERVAL_MS).toBeGreaterThan(START_INTERVAL_MS);
    expect(nextProbe(run(['success']), due, started + 60, started, exec)).toEqual({ at: due, counted: true });
    // An extra probe never pushes past the regular one.
    expect(nextProbe(initialProbeState, due, due - 10, started, exec)).toEqual({ at: due, counted: true });
  });

  it('probes a starting tcp or http check every few ms in its first seconds (a refused connect costs nothing), an exec check every 50 ms', () => {
    const started = 100_000;
    const due = started + 10_000;
    for (const type of ['tcp', 'http'] as const) {
      expect(nextProbe(initialProbeState, due, started + 60, started, { type })).toEqual({ at: started + 60 + START_CONNECT_INTERVAL_MS, counted: false });
      expect(nextProbe(initialProbeState, due, started + START_FAST_MS + 1, started, { type })).toEqual({ at: started + START_FAST_MS + 1 + START_SLOW_INTERVAL_MS, counted: false });
      expect(nextProbe(run(['success']), due, started + 60, started, { type })).toEqual({ at: due, counted: true });
    }
    expect(START_CONNECT_INTERVAL_MS).toBeLessThan(START_INTERVAL_MS);
  });

  it('probes first after the initial delay, then every period', () => {
    expect(firstProbeAt(10_000, check)).toBe(15_000);
    expect(nextProbeAt(15_000, check)).toBe(17_000);
  });
});

import { describe, expect, it } from 'vitest';
import { HealthCheck } from '#common/model.ts';
import { firstProbeAt, initialProbeState, nextProbeAt, recordProbe, type ProbeOutcome } from './probe-state.ts';

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

  it('probes first after the initial delay, then every period', () => {
    expect(firstProbeAt(10_000, check)).toBe(15_000);
    expect(nextProbeAt(15_000, check)).toBe(17_000);
  });
});

/**
 * Kubernetes probe semantics as a pure state machine (reference/docker-plugin-compose.md §5):
 * no probe before `initial_delay_seconds`; then one every `period_seconds`; a probe that
 * takes longer than `timeout_seconds` failed; `failure_threshold` consecutive failures make
 * the container unhealthy; one success makes it healthy again (success threshold 1, as
 * liveness requires). An `unknown` result (the agent could not ask) changes nothing.
 */
import type { HealthCheck } from '#common/model.ts';

export type ProbeOutcome = 'success' | 'failure' | 'unknown';

export interface ProbeResult {
  outcome: ProbeOutcome;
  /** Why it failed, for logs and reports. */
  detail: string | null;
}

export interface ProbeState {
  status: 'starting' | 'healthy' | 'unhealthy';
  consecutiveFailures: number;
  lastDetail: string | null;
}

export const initialProbeState: ProbeState = { status: 'starting', consecutiveFailures: 0, lastDetail: null };

/** Pure: the state after one probe result. */
export function recordProbe(state: ProbeState, result: ProbeResult, check: HealthCheck): ProbeState {
  if (result.outcome === 'unknown') return state;
  if (result.outcome === 'success') return { status: 'healthy', consecutiveFailures: 0, lastDetail: null };
  const consecutiveFailures = state.consecutiveFailures + 1;
  return {
    status: consecutiveFailures >= check.failure_threshold ? 'unhealthy' : state.status,
    consecutiveFailures,
    lastDetail: result.detail,
  };
}

/** Milliseconds since the epoch of the first probe of a container started at `startedAt`. */
export function firstProbeAt(startedAt: number, check: HealthCheck): number {
  return startedAt + check.initial_delay_seconds * 1000;
}

/** Milliseconds since the epoch of the probe after one that started at `probeStartedAt`. */
export function nextProbeAt(probeStartedAt: number, check: HealthCheck): number {
  return probeStartedAt + check.period_seconds * 1000;
}

export function probeTimeoutMs(check: HealthCheck): number {
  return Math.round(check.timeout_seconds * 1000);
}

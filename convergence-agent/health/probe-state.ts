/**
 * Kubernetes probe semantics as a pure state machine (docs/DESIGN.md §4):
 * no probe before `initial_delay_seconds`; then one every `period_seconds`; a probe that
 * takes longer than `timeout_seconds` failed; `failure_threshold` consecutive failures make
 * the container unhealthy; one success makes it healthy again (success threshold 1, as
 * liveness requires). An `unknown` result (the agent could not ask) changes nothing.
 *
 * Docker's start interval, for every check: until a container has passed its first probe
 * (`starting`), extra probes run every `startIntervalMs(check)` — START_CONNECT_INTERVAL_MS
 * for tcp and http, START_INTERVAL_MS for exec — (after START_FAST_MS, every
 * START_SLOW_INTERVAL_MS) between the regular ones. Their success makes it healthy at once;
 * their failure counts for nothing (only the regular probes count toward the threshold). A container that comes up in 300 ms is known healthy
 * within one such interval, not a whole period later — during a migration's cutover that
 * wait is application downtime.
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

/**
 * How often a container that has not passed a probe yet is probed between regular probes:
 * every START_INTERVAL_MS during its first START_FAST_MS (most applications that start fast —
 * a moved Redis — answer within that; each probe sooner is downtime saved at a migration's
 * release), every START_SLOW_INTERVAL_MS after (a slow starter is not exec'd 20 times a second).
 * A tcp or http check probes every START_CONNECT_INTERVAL_MS in those first seconds instead:
 * its probe is a connect that is refused (or closed by Docker's port proxy) within a ms or
 * two, not a process spawned in the container, and the 50 ms interval was on average 25 ms
 * of a moved application's readiness no one saw (docs/DESIGN.md §39).
 */
export const START_INTERVAL_MS = 50;
export const START_CONNECT_INTERVAL_MS = 10;
export const START_FAST_MS = 2_000;
export const START_SLOW_INTERVAL_MS = 100;

/** The extra probes' interval in a container's first START_FAST_MS, for its check's type. */
export function startIntervalMs(check: Pick<HealthCheck, 'type'>): number {
  return check.type === 'exec' ? START_INTERVAL_MS : START_CONNECT_INTERVAL_MS;
}

/**
 * When the next probe runs and whether it is a regular one: `due` is the next regular probe;
 * while `starting`, an extra (not counted) probe comes first when it falls before `due`.
 * `startedAt` is when the container started (ms since the epoch, like `now`).
 */
export function nextProbe(state: ProbeState, due: number, now: number, startedAt: number, check: Pick<HealthCheck, 'type'>): { at: number; counted: boolean } {
  const interval = now - startedAt < START_FAST_MS ? startIntervalMs(check) : START_SLOW_INTERVAL_MS;
  if (state.status === 'starting' && now + interval < due) return { at: now + interval, counted: false };
  return { at: due, counted: true };
}

/** The result of an extra start-interval probe: a failure does not count. */
export function uncounted(result: ProbeResult): ProbeResult {
  return result.outcome === 'failure' ? { outcome: 'unknown', detail: result.detail } : result;
}

export function probeTimeoutMs(check: HealthCheck): number {
  return Math.round(check.timeout_seconds * 1000);
}

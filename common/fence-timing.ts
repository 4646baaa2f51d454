/**
 * The timing argument of self-fencing and failover (docs/DESIGN.md §18), as numbers both sides
 * check: the agent refuses a fence that could end after the earliest failover, the control
 * service refuses a failover margin too small for it. Pure.
 *
 * s: real time an agent sent its last acknowledged report; r ≥ s: when the control service
 * received it (its `lastSeen`). ε: the largest clock-rate difference allowed between hosts.
 * - The agent has fenced by s + `fencedWithinMs` (real time): its watchdog notices at most one
 *   check period after `fence_after` on a clock up to ε slow, the stop's grace ends in SIGKILL,
 *   and SIGKILL plus `zfs set readonly` take at most `FENCE_FINISH_MS`.
 * - The control service fails over no earlier than r + (1 − ε)·(TTL + margin) on a clock up to
 *   ε fast.
 * Safe when the first is below the second; the agent checks it against the smallest margin the
 * control service accepts, so any accepted margin keeps it.
 */

/** The largest clock-rate difference between two hosts drover allows for (5 %: NTP keeps them within ppm). */
export const CLOCK_RATE_ERROR = 0.05;
/** How often the agent's fence watchdog looks (convergence-agent/fence.ts). */
export const FENCE_CHECK_MS = 250;
/** SIGKILL after the stop's grace, and `zfs set readonly`, take at most this long. */
export const FENCE_FINISH_MS = 1000;
/** Failover at lease TTL + this much silence by default. */
export const DEFAULT_FAILOVER_MARGIN_MS = 1000;
/** The smallest margin the control service accepts; the agent's check assumes it. */
export const MIN_FAILOVER_MARGIN_MS = 500;

export interface FenceSettings {
  /** `fence_after_ms`: no acknowledged report sent in this long → fence. */
  fenceAfterMs: number;
  /** `fence_stop_timeout_seconds`, in ms: the grace of a fencing stop before SIGKILL. */
  stopTimeoutMs: number;
}

/** Real time after the sending of its last acknowledged report by which an agent has fenced, ms. */
export function fencedWithinMs(f: FenceSettings): number {
  return f.fenceAfterMs * (1 + CLOCK_RATE_ERROR) + FENCE_CHECK_MS + f.stopTimeoutMs + FENCE_FINISH_MS;
}

/** Silence (on the control service's clock) after which a node's applications may fail over, ms. */
export function failoverAfterMs(leaseTtlMs: number, marginMs: number = DEFAULT_FAILOVER_MARGIN_MS): number {
  return leaseTtlMs + marginMs;
}

/** The earliest real time after the last report's receipt at which a failover can happen, ms. */
export function earliestFailoverMs(leaseTtlMs: number, marginMs: number): number {
  return (1 - CLOCK_RATE_ERROR) * failoverAfterMs(leaseTtlMs, marginMs);
}

/**
 * Why these fence settings are unsafe with a lease of `leaseTtlMs` (the fence could end after
 * the earliest failover the control service may make), or null when they are safe.
 */
export function fenceProblem(f: FenceSettings, leaseTtlMs: number): string | null {
  const fenced = fencedWithinMs(f);
  const earliest = earliestFailoverMs(leaseTtlMs, MIN_FAILOVER_MARGIN_MS);
  if (fenced < earliest) return null;
  return (
    `the fence ends up to ${Math.round(fenced)} ms after the last acknowledged report ` +
    `(fence_after_ms·${1 + CLOCK_RATE_ERROR} + ${FENCE_CHECK_MS} ms watchdog + fence_stop_timeout_seconds + ${FENCE_FINISH_MS} ms), ` +
    `not before the earliest failover at ${Math.round(earliest)} ms ((lease_ttl_ms + ${MIN_FAILOVER_MARGIN_MS} ms)·${1 - CLOCK_RATE_ERROR})`
  );
}

/**
 * How long the control service waits, after a failover's decision, for every live proxy to
 * apply the route that holds the application's connections before the chosen node may promote
 * anyway (docs/DESIGN.md §18 "The route hold"). A proxy that has not acknowledged by then is
 * cut off from the control service, so nothing it relays reaches a copy that can still write:
 * the failed node's fence (its agent's, or the watchdog process's when the agent is paused) was
 * complete before the decision.
 */
export const ROUTE_HOLD_ACK_MS = 2000;
/**
 * The same wait when only the failed node's own proxy has not acknowledged: cut off with its node,
 * it never will (a partition cost the whole 2 s in 9 of 10 trials); with only the agent paused it
 * acknowledges within a fraction of this (0.1 s at load 20–35).
 */
export const ROUTE_HOLD_FAILED_NODE_ACK_MS = 500;

/**
 * Real time after the sending of the agent's last acknowledged report by which the fence
 * watchdog process (convergence-agent/fence-watchdog/) has fenced, even when the agent itself
 * is paused: it shares the agent's host clock, so no clock-rate allowance lies between them;
 * it looks every `FENCE_CHECK_MS`, then stops with the same grace and finish. Never later than
 * `fencedWithinMs`: the same timing argument covers it.
 */
export function watchdogFencedWithinMs(f: FenceSettings): number {
  return f.fenceAfterMs + FENCE_CHECK_MS + f.stopTimeoutMs + FENCE_FINISH_MS;
}

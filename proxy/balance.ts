/**
 * Spreading a port's new connections over an application's instances (docs/DESIGN.md §30):
 * round robin over the route's `targets`, skipping a target whose connect failed within the
 * last `FAILED_FOR_MS` (passive health: the control service takes a dead instance out of the
 * route within a report, the proxy stops trying it at the first refused connect). When every
 * target failed recently, the one that failed longest ago is tried. No I/O; time is an input.
 *
 * Round robin rather than least connections: the engines do not tell the core when a relay
 * ends (no close callbacks, by design: tcp-uv.ts), and for short requests over a few
 * instances the two spread alike; measured in bench/RESULTS.md.
 */
import type { Endpoint } from './tcp.ts';

/** How long a target whose connect failed is skipped. */
export const FAILED_FOR_MS = 2_000;

export class Balancer {
  private next = 0;
  private readonly failedAt = new Map<string, number>();

  /**
   * The target for the next connection; null when there is none. `except` (`host:port`): one
   * to take only when it is the last choice (the one a connection just lost, docs/DESIGN.md §30).
   */
  pick(targets: readonly Endpoint[], now: number, except?: string): Endpoint | null {
    const n = targets.length;
    if (n === 0) return null;
    if (n === 1) return targets[0]!;
    let oldest: Endpoint | null = null;
    let oldestAt = Infinity;
    for (let k = 0; k < n; k++) {
      const target = targets[(this.next + k) % n]!;
      const at = except !== undefined && keyOf(target) === except ? now : this.failedAt.size === 0 ? undefined : this.failedAt.get(keyOf(target));
      if (at === undefined || now - at >= FAILED_FOR_MS) {
        this.next = (this.next + k + 1) % n;
        return target;
      }
      if (at < oldestAt) [oldest, oldestAt] = [target, at];
    }
    return oldest;
  }

  /** A connect to `target` failed now. */
  failed(target: string, now: number): void {
    this.failedAt.set(target, now);
    if (this.failedAt.size > 64) for (const [k, at] of this.failedAt) if (now - at >= FAILED_FOR_MS) this.failedAt.delete(k);
  }

  /** True when some target other than `except` has not failed recently. */
  hasAlternative(targets: readonly Endpoint[], except: string, now: number): boolean {
    return targets.some((t) => {
      const key = keyOf(t);
      const at = this.failedAt.get(key);
      return key !== except && (at === undefined || now - at >= FAILED_FOR_MS);
    });
  }
}

export function keyOf(target: Endpoint): string {
  return `${target.host}:${target.port}`;
}

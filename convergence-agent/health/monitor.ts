/**
 * Runs each running container's health check on its own schedule (Kubernetes semantics,
 * probe-state.ts) and keeps the latest status for discovery to read. Time comes from the
 * injected Clock. When a status changes, `onChange` wakes the loop so an unhealthy
 * container is dealt with at once, not at the next timer.
 *
 * A container is tracked per (id, start time, check): a restart or a changed check starts
 * from `starting` again, with the initial delay.
 */
import type { Logger } from '#common/log.ts';
import type { HealthCheck } from '#common/model.ts';
import type { Clock } from '#common/clock.ts';
import type { ContainerRuntime } from '../container-runtime.ts';
import type { Health } from '../plan/types.ts';
import { firstProbeAt, initialProbeState, nextProbe, nextProbeAt, probeTimeoutMs, recordProbe, uncounted, type ProbeResult, type ProbeState } from './probe-state.ts';
import type { AgentMetrics } from '../metrics.ts';
import { execProbe, httpProbe, tcpProbe } from './probes.ts';

export interface ProbeTarget {
  containerId: string;
  /** The application the container runs, for the probe metric's label. */
  application?: string;
  /** Milliseconds since the epoch; the initial delay counts from here. */
  startedAt: number;
  check: HealthCheck;
  /** Where http and tcp checks connect: the published host port, or the container's address. */
  endpoint: { host: string; port: number } | null;
}

interface Tracked {
  key: string;
  state: ProbeState;
  abort: AbortController;
  done: Promise<void>;
}

export interface HealthMonitorDeps {
  clock: Clock;
  runtime: Pick<ContainerRuntime, 'exec'>;
  log: Logger;
  onChange?: (containerId: string, state: ProbeState) => void;
  /** Where probe results are counted (docs/DESIGN.md §25). */
  metrics?: Pick<AgentMetrics, 'probe'>;
}

export class HealthMonitor {
  private readonly tracked = new Map<string, Tracked>();

  constructor(private readonly deps: HealthMonitorDeps) {}

  /** Makes the tracked set exactly `targets`: new ones start, gone or changed ones stop. */
  sync(targets: ProbeTarget[]): void {
    const wanted = new Map(targets.map((t) => [t.containerId, t]));
    for (const [id, tracked] of this.tracked) {
      const target = wanted.get(id);
      if (!target || keyOf(target) !== tracked.key) this.untrack(id);
    }
    for (const target of targets) {
      if (!this.tracked.has(target.containerId)) this.track(target);
    }
  }

  /** `unknown` for a container without a (tracked) health check. */
  health(containerId: string): Health {
    return this.tracked.get(containerId)?.state.status ?? 'unknown';
  }

  state(containerId: string): ProbeState | null {
    return this.tracked.get(containerId)?.state ?? null;
  }

  /** Stops every probe loop and waits for them to end. */
  async stop(): Promise<void> {
    const done = [...this.tracked.values()].map((t) => t.done);
    for (const id of [...this.tracked.keys()]) this.untrack(id);
    await Promise.all(done);
  }

  private track(target: ProbeTarget): void {
    const abort = new AbortController();
    const tracked: Tracked = { key: keyOf(target), state: initialProbeState, abort, done: Promise.resolve() };
    this.tracked.set(target.containerId, tracked);
    tracked.done = this.run(target, tracked).catch((err: unknown) => {
      this.deps.log.error({ err, containerId: target.containerId }, 'health probe loop failed');
    });
  }

  private untrack(id: string): void {
    this.tracked.get(id)?.abort.abort();
    this.tracked.delete(id);
  }

  private async run(target: ProbeTarget, tracked: Tracked): Promise<void> {
    const { clock } = this.deps;
    const signal = tracked.abort.signal;
    let due = firstProbeAt(target.startedAt, target.check);
    let first = true;
    for (;;) {
      // Before the initial delay nothing runs; after it, a starting container gets extra probes.
      const next = first ? { at: due, counted: true } : nextProbe(tracked.state, due, clock.now(), target.startedAt, target.check);
      first = false;
      await clock.sleep(Math.max(0, next.at - clock.now()), signal);
      if (signal.aborted) return;
      const startedAt = clock.now();
      const probed = await this.probe(target);
      if (signal.aborted) return;
      this.deps.metrics?.probe(target.application ?? 'unknown', probed.outcome);
      const result = next.counted ? probed : uncounted(probed);
      const before = tracked.state;
      tracked.state = recordProbe(before, result, target.check);
      if (tracked.state.status !== before.status) {
        this.deps.log.info(
          { containerId: target.containerId, health: tracked.state.status, detail: result.detail },
          'health changed',
        );
        this.deps.onChange?.(target.containerId, tracked.state);
      }
      if (next.counted) due = nextProbeAt(startedAt, target.check);
    }
  }

  private probe(target: ProbeTarget): Promise<ProbeResult> {
    const { check } = target;
    const timeoutMs = probeTimeoutMs(check);
    switch (check.type) {
      case 'exec':
        return execProbe(this.deps.runtime, target.containerId, check.command, timeoutMs);
      case 'http':
        if (!target.endpoint) return Promise.resolve({ outcome: 'unknown', detail: 'no address to probe' });
        return httpProbe(target.endpoint.host, target.endpoint.port, check.path, timeoutMs);
      case 'tcp':
        if (!target.endpoint) return Promise.resolve({ outcome: 'unknown', detail: 'no address to probe' });
        return tcpProbe(target.endpoint.host, target.endpoint.port, timeoutMs, { send: check.send, expect: check.expect });
    }
  }
}

function keyOf(target: ProbeTarget): string {
  return JSON.stringify([target.startedAt, target.check, target.endpoint]);
}

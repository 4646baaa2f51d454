/**
 * What the control service measures (docs/DESIGN.md §25), as the instrumented code sees it: a
 * small interface, so the code never touches prom-client (`prom-metrics.ts` is the one
 * adapter) and tests can pass their own. The counts that describe state (agents by state,
 * migrations by phase) are read at scrape time from `ControlGauges`, not pushed.
 */
import type { Desired, MigrationPhase } from '#common/model.ts';

export interface ControlMetrics {
  /** One API request answered: its route template (`/v1/drover/migrations/:id`), method, status and time. */
  request(route: string, method: string, code: number, seconds: number): void;
  /** A migration record entered `phase` (moves only; failovers are counted by `failover`). */
  migrationPhase(phase: MigrationPhase): void;
  /** The control service failed an application (or datasets) over to another node. */
  failover(): void;
}

/** What the gauges read at each scrape. */
export interface ControlGauges {
  /** Registered nodes by lease state; a node not heard from since start counts as unknown. */
  agents(): Record<'known' | 'unknown' | 'down', number>;
  /** Migration records in the desired configuration, by phase (failover records apart). */
  migrations(): Partial<Record<MigrationPhase, number>>;
}

export const NO_CONTROL_METRICS: ControlMetrics = {
  request: () => undefined,
  migrationPhase: () => undefined,
  failover: () => undefined,
};

/** The gauges of a running control service: read from its desired configuration and observed state. */
export function controlGauges(control: { readonly desired: Desired; readonly observed: { stateOf(uuid: string): 'known' | 'unknown' | 'down' | null } }): ControlGauges {
  return {
    agents: () => {
      const counts = { known: 0, unknown: 0, down: 0 };
      for (const node of control.desired.nodes) counts[control.observed.stateOf(node.uuid) ?? 'unknown'] += 1;
      return counts;
    },
    migrations: () => {
      const counts: Partial<Record<MigrationPhase, number>> = {};
      for (const m of control.desired.migrations) if (m.failover === undefined) counts[m.phase] = (counts[m.phase] ?? 0) + 1;
      return counts;
    },
  };
}

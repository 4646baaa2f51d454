/**
 * What the instance scheduler (scheduler/instances.ts) reads of observed state, and the drain
 * of an instance (docs/DESIGN.md §30): an instance marked draining left the route table at
 * once; it is drained when every live proxy acknowledged a table without it and
 * `DRAIN_MIN_MS` passed (open requests end), or at the latest after `DRAIN_MAX_MS` (a proxy
 * that does not answer does not keep it forever).
 */
import type { Desired, Instance } from '#common/model.ts';
import { indexOf } from '../desired/desired-index.ts';
import { instanceName } from '../desired/instances.ts';
import { planInstances, type InstanceResult } from '../scheduler/instances.ts';
import type { AckStatus } from '../channel/route-service.ts';
import type { ObservedState } from './observed-state.ts';

export const DRAIN_MIN_MS = 1_000;
export const DRAIN_MAX_MS = 15_000;

export interface InstanceWatchDeps {
  observed: ObservedState;
  /** The route table's version now (recomputed from the configuration first). */
  routeVersion: () => number;
  acks: (version: number) => AckStatus;
  clock: () => number;
  seed: number;
}

export class InstanceWatch {
  /** `<app>.<id>` → the route table version that first left it out. */
  private readonly leftAt = new Map<string, number>();

  constructor(private readonly deps: InstanceWatchDeps) {}

  /** Instances placed, replaced, drained and rolled now; `desired` itself when nothing changes. */
  plan(desired: Desired, now = this.deps.clock()): InstanceResult {
    const { observed } = this.deps;
    return planInstances({
      desired,
      up: observed.upNodes(),
      gone: (node) => observed.silentMs(node) !== null && observed.stateOf(node) !== 'known',
      now,
      seed: this.deps.seed,
      ready: (app, i) => this.ready(desired, app, i),
      drained: (app, i) => this.drained(app, i, now),
    });
  }

  /** Records the table version that left out each draining instance, once the table has it. */
  noteDraining(desired: Desired): void {
    const draining = new Set<string>();
    for (const app of desired.applications) for (const i of app.placed ?? []) if (i.draining_since !== undefined) draining.add(instanceName(app.name, i.id));
    for (const key of this.leftAt.keys()) if (!draining.has(key)) this.leftAt.delete(key);
    if (draining.size === 0) return;
    let version: number | null = null;
    for (const key of draining) if (!this.leftAt.has(key)) this.leftAt.set(key, (version ??= this.deps.routeVersion()));
  }

  ready(desired: Desired, app: string, i: Instance): boolean {
    const { observed } = this.deps;
    if (observed.stateOf(i.node_uuid) !== 'known') return false;
    const seen = observed.get(i.node_uuid)?.containers.get(instanceName(app, i.id));
    const health = indexOf(desired).applications.get(app)?.health_check;
    return seen !== undefined && seen.running && (health === undefined || seen.health === 'healthy');
  }

  private drained(app: string, i: Instance, now: number): boolean {
    const since = i.draining_since ?? now;
    if (now - since >= DRAIN_MAX_MS) return true;
    if (now - since < DRAIN_MIN_MS) return false;
    const version = this.leftAt.get(instanceName(app, i.id));
    return version !== undefined && this.deps.acks(version).acked;
  }
}

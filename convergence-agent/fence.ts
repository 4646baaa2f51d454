/**
 * Self-fencing (docs/DESIGN.md §18). The agent's lease is renewed by each report the control
 * service acknowledges. When no report *sent* in the last `fenceAfterMs` was acknowledged, the
 * agent stops every failover-enabled application it runs (docker stop with a bounded grace,
 * which ends in SIGKILL) and sets their datasets read-only — before the control service may
 * fail them over (it waits TTL + grace, measured from the same report's arrival, which is
 * later than its sending).
 *
 * The watchdog runs on its own timer, beside the pass loop, so a pass stuck on a hung call
 * does not stop it. While `gating()` is true the planner starts nothing failover-enabled and
 * makes none of their datasets writable: from start-up, and after a fence, until a report sent
 * after that moment is acknowledged and the loop holds a view at least as new as the version
 * that acknowledgement named — so a node that was paused or cut off reads whether it is still
 * primary before it starts anything.
 */
import type { AgentDesired } from '#common/channel.ts';
import type { Clock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import type { Application } from '#common/model.ts';
import type { ContainerRuntime } from './container-runtime.ts';
import { LABEL_APP } from './plan/labels.ts';

export interface FenceDeps {
  clock: Clock;
  runtime: ContainerRuntime;
  /** Sets a dataset read-only (the zfs adapter). */
  setReadonly(datasetId: string, readonly: boolean): Promise<void>;
  log: Logger;
  nodeUuid: string;
  /** The newest view the loop holds. */
  desired(): AgentDesired | null;
  fenceAfterMs: number;
  /** Grace of each stop before SIGKILL, seconds. */
  stopTimeoutSeconds: number;
  /** How often the watchdog looks. */
  checkEveryMs?: number;
  /**
   * The fence outside this process (fence-watchdog/): told the deadline and what it covers at
   * every acknowledgement and look, so it fences when this process is paused or gone.
   */
  outside?: OutsideFence;
}

/** What the agent tells its fence watchdog process (fence-watchdog/arm.ts); it survives a SIGSTOP of the agent. */
export interface OutsideFence {
  /**
   * Fence at `inMs` from now (on the host's monotonic clock) unless armed again: stop the
   * running containers of `apps` and set `datasetIds` read-only. `since`: the acknowledged
   * sending the deadline counts from (unchanged → the deadline is the same).
   */
  arm(since: number, inMs: number, apps: readonly string[], datasetIds: readonly string[]): void;
  /** The agent stops on purpose: the watchdog ends without fencing. */
  disarm(): Promise<void>;
}

/** What a fence acts on and with: the agent's own fence and its watchdog process share it. */
export interface FenceActions {
  runtime: ContainerRuntime;
  setReadonly(datasetId: string, readonly: boolean): Promise<void>;
  log: Logger;
  nodeUuid: string;
  stopTimeoutSeconds: number;
}

/**
 * Stops every running container of `apps` (docker stop with the grace, which ends in SIGKILL)
 * and then sets `datasetIds` read-only; failures are logged, never thrown (each part is tried).
 */
export async function fenceApplications(a: FenceActions, apps: ReadonlySet<string>, datasetIds: Iterable<string>): Promise<void> {
  const containers = await a.runtime.listContainers(a.nodeUuid).catch((err: unknown) => {
    a.log.error({ err }, 'containers not listed while fencing');
    return [];
  });
  await Promise.all(
    containers
      .filter((c) => c.running && apps.has(c.labels[LABEL_APP] ?? ''))
      .map(async (c) => {
        try {
          await a.runtime.stop(c.id, a.stopTimeoutSeconds);
          a.log.warn({ container: c.name }, 'container fenced');
        } catch (err) {
          a.log.error({ err, container: c.name }, 'container not stopped while fencing');
        }
      }),
  );
  for (const id of datasetIds) {
    await a.setReadonly(id, true).catch((err: unknown) => a.log.error({ err, datasetId: id }, 'dataset not set read-only while fencing'));
  }
}

/** The failover-enabled applications `desired` places on `node`, and the datasets a fence makes read-only. Pure. */
export function fenceScope(desired: AgentDesired, node: string): { apps: string[]; datasetIds: string[] } {
  const apps = desired.applications.filter((a) => a.node_uuid === node && failoverEnabledIn(desired, a));
  const ids = new Set(apps.flatMap((a) => a.volumes.map((v) => v.dataset_id)));
  for (const d of desired.datasets) if (d.primary === node && (d.replication?.replicas ?? 0) >= 1) ids.add(d.dataset_id);
  return { apps: apps.map((a) => a.name), datasetIds: [...ids] };
}

export type FenceState = 'unconfirmed' | 'live' | 'fenced';

/**
 * Fencing applies to an application with data whose every dataset in the view keeps ≥ 1
 * replica: it is the one that can fail over with its data, so the only one two nodes could
 * write at once. An application without data is rescheduled by the control service when its
 * node is down but never stopped by the fence: losing the control service must not take down
 * every stateless service (a partitioned node may run one beside its replacement for a while).
 * Pure.
 */
export function failoverEnabledIn(desired: AgentDesired, app: Application): boolean {
  return app.volumes.length > 0 && app.volumes.every((v) => (desired.datasets.find((d) => d.dataset_id === v.dataset_id)?.replication?.replicas ?? 0) >= 1);
}

export class FenceWatchdog {
  private state: FenceState = 'unconfirmed';
  /** When the newest acknowledged report was sent (agent clock); the start until the first. */
  private lastAckSentAt: number;
  /** When the current gate began (start-up or the fence). */
  private gateSince: number;
  /** The view version an acknowledgement after the gate began named; the gate opens with a view this new. */
  private confirmVersion: number | null = null;
  private fencing: Promise<void> | null = null;
  private readonly stopping = new AbortController();
  private running: Promise<void> | null = null;

  constructor(private readonly deps: FenceDeps) {
    this.lastAckSentAt = deps.clock.now();
    this.gateSince = this.lastAckSentAt;
  }

  get current(): FenceState {
    return this.state;
  }

  start(): void {
    this.running = this.watch();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
    await this.fencing;
    await this.deps.outside?.disarm();
  }

  /**
   * A report sent at `sentAt` was acknowledged, naming view version `version`. An
   * acknowledgement that arrives after the deadline passed fences first (a paused agent
   * resumed: its lease may have lapsed meanwhile).
   */
  async acked(sentAt: number, version: number): Promise<void> {
    if (this.overdue()) await this.fence();
    if (sentAt > this.lastAckSentAt) this.lastAckSentAt = sentAt;
    if (this.state !== 'live' && sentAt >= this.gateSince) this.confirmVersion = Math.max(this.confirmVersion ?? 0, version);
    this.armOutside();
  }

  /** True while failover-enabled applications must not start here; opens once the view is confirmed. */
  gating(desired: AgentDesired | null): boolean {
    if (this.state === 'live') return false;
    if (this.fencing === null && this.confirmVersion !== null && desired !== null && desired.version >= this.confirmVersion && !this.overdue()) {
      this.deps.log.info({ from: this.state, version: desired.version }, 'lease confirmed');
      this.state = 'live';
      this.confirmVersion = null;
      return false;
    }
    return true;
  }

  /** Looks now (the timer calls this; tests may too). */
  async check(): Promise<void> {
    this.armOutside();
    if (this.overdue()) await this.fence();
  }

  /**
   * Tells the watchdog process the deadline (the same one `overdue` uses) and what is in scope
   * now; a view that placed a new application here reaches it within a look.
   */
  private armOutside(): void {
    const { outside, clock, fenceAfterMs, nodeUuid } = this.deps;
    const desired = this.deps.desired();
    if (outside === undefined || desired === null) return;
    const scope = fenceScope(desired, nodeUuid);
    outside.arm(this.lastAckSentAt, this.lastAckSentAt + fenceAfterMs - clock.now(), scope.apps, scope.datasetIds);
  }

  private overdue(): boolean {
    return this.state !== 'fenced' && this.deps.clock.now() - this.lastAckSentAt > this.deps.fenceAfterMs;
  }

  /** Stops failover-enabled containers (bounded) and sets their datasets read-only. Idempotent while it runs. */
  fence(): Promise<void> {
    if (this.fencing) return this.fencing;
    const { deps } = this;
    const now = deps.clock.now();
    deps.log.warn({ silentMs: now - this.lastAckSentAt, fenceAfterMs: deps.fenceAfterMs }, 'lease not renewed: fencing');
    this.state = 'fenced';
    this.gateSince = now;
    this.confirmVersion = null;
    this.fencing = this.fenceNow().finally(() => (this.fencing = null));
    return this.fencing;
  }

  private async fenceNow(): Promise<void> {
    const desired = this.deps.desired();
    // Unknown is not empty: without a view nothing is known to be failover-enabled, and the gate stays shut.
    if (desired === null) return;
    const scope = fenceScope(desired, this.deps.nodeUuid);
    await fenceApplications(this.deps, new Set(scope.apps), scope.datasetIds);
  }

  private async watch(): Promise<void> {
    const every = this.deps.checkEveryMs ?? 250;
    while (!this.stopping.signal.aborted) {
      await this.check().catch((err: unknown) => this.deps.log.error({ err }, 'fence check failed'));
      await this.deps.clock.sleep(every, this.stopping.signal).catch(() => undefined);
    }
  }
}

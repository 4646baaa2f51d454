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
    if (this.overdue()) await this.fence();
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
    const { deps } = this;
    const desired = deps.desired();
    // Unknown is not empty: without a view nothing is known to be failover-enabled, and the gate stays shut.
    if (desired === null) return;
    const apps = desired.applications.filter((a) => a.node_uuid === deps.nodeUuid && failoverEnabledIn(desired, a));
    const names = new Set(apps.map((a) => a.name));
    const containers = await deps.runtime.listContainers(deps.nodeUuid).catch((err: unknown) => {
      deps.log.error({ err }, 'containers not listed while fencing');
      return [];
    });
    await Promise.all(
      containers
        .filter((c) => c.running && names.has(c.labels[LABEL_APP] ?? ''))
        .map(async (c) => {
          try {
            await deps.runtime.stop(c.id, deps.stopTimeoutSeconds);
            deps.log.warn({ container: c.name }, 'container fenced');
          } catch (err) {
            deps.log.error({ err, container: c.name }, 'container not stopped while fencing');
          }
        }),
    );
    const ids = new Set(apps.flatMap((a) => a.volumes.map((v) => v.dataset_id)));
    for (const d of desired.datasets) if (d.primary === deps.nodeUuid && (d.replication?.replicas ?? 0) >= 1) ids.add(d.dataset_id);
    for (const id of ids) {
      await deps.setReadonly(id, true).catch((err: unknown) => deps.log.error({ err, datasetId: id }, 'dataset not set read-only while fencing'));
    }
  }

  private async watch(): Promise<void> {
    const every = this.deps.checkEveryMs ?? 250;
    while (!this.stopping.signal.aborted) {
      await this.check().catch((err: unknown) => this.deps.log.error({ err }, 'fence check failed'));
      await this.deps.clock.sleep(every, this.stopping.signal).catch(() => undefined);
    }
  }
}

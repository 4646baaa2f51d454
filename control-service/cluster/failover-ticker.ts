/**
 * The control service's failover decisions, once a second and on time (docs/DESIGN.md §18):
 * applications of nodes silent for lease TTL + margin fail over to a chosen node, decided again
 * inside the write; failover records learn what was observed since. Only the leader decides.
 */
import type { Logger } from '#common/log.ts';
import type { Desired, Migration } from '#common/model.ts';
import type { StoreSnapshot } from '../store/config-store.ts';
import type { ChangeContext } from '../control.ts';
import type { ControlMetrics } from '../metrics.ts';
import type { Leadership } from './leadership.ts';
import type { ObservedState } from './observed-state.ts';
import { indexOf } from '../desired/desired-index.ts';
import { chooseFailoverTarget, failover, failoverCandidates, mayFailOver, updateFailover, type FailoverSubject } from './failover.ts';

export interface FailoverTickerDeps {
  desired: () => Desired;
  observed: ObservedState;
  change: (fn: (desired: Desired, ctx: ChangeContext) => Desired | null | undefined) => Promise<StoreSnapshot>;
  leadership: Leadership;
  log: Logger;
  metrics: ControlMetrics;
  clock: () => number;
  /** Failover after this much silence: lease TTL + margin (null: never). */
  afterMs: number | null;
}

export class FailoverTicker {
  private failingOver = false;
  private timer: NodeJS.Timeout | null = null;
  /** Why a due failover could not happen, by subject: logged when it changes. */
  private readonly blocked = new Map<string, string>();

  constructor(private readonly deps: FailoverTickerDeps) {}

  /** The once-a-second step: what is due fails over; a failover due before the next tick gets a timer. */
  tick(): Promise<void> {
    this.onTime();
    return this.decide();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * What may fail over now: failover-enabled subjects of nodes silent for `afterMs` (lease TTL
   * + margin; by then the node's agent has fenced itself — docs/DESIGN.md §18). The node is
   * `unknown` then; `down` (TTL + grace) is what status shows, not a condition here.
   */
  private due(desired: Desired): FailoverSubject[] {
    const { afterMs, observed } = this.deps;
    if (afterMs === null) return [];
    const due: FailoverSubject[] = [];
    for (const node of desired.nodes) {
      // A node not heard from since this process started is not judged: its silence is unknown.
      const silent = observed.silentMs(node.uuid);
      if (silent === null || !mayFailOver(silent, afterMs)) continue;
      due.push(...failoverCandidates(desired, node.uuid));
    }
    return due;
  }

  /**
   * A node whose failover falls due before the next once-a-second tick gets a timer for that
   * moment: the failover happens at lease TTL + margin, not up to a second later (it is the
   * larger part of the RTO that is not detection). The timer only runs the same decision.
   */
  private onTime(): void {
    const { afterMs, observed } = this.deps;
    if (afterMs === null || this.timer !== null) return;
    let soonest: number | null = null;
    for (const node of this.deps.desired().nodes) {
      const silent = observed.silentMs(node.uuid);
      if (silent === null || silent >= afterMs) continue;
      const left = afterMs - silent;
      if (left < 1000 && (soonest === null || left < soonest)) soonest = left;
    }
    if (soonest === null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.decide();
    }, soonest + 1);
    this.timer.unref();
  }

  /**
   * Applications on nodes down long enough fail over (cluster/failover.ts), decided again
   * inside the write; failover records learn when the application ran on its new node and
   * which copies the failed node kept.
   */
  private decide(): Promise<void> {
    const { observed, log } = this.deps;
    if (this.failingOver || !this.deps.leadership.isLeader()) return Promise.resolve();
    const desired = this.deps.desired();
    const due = this.due(desired);
    const progress = this.progress(desired);
    if (due.length === 0 && progress === desired) return Promise.resolve();
    this.failingOver = true;
    const made: Migration[] = [];
    const snapshotsOn = (node: string, id: string) => observed.get(node)?.report.datasets.find((d) => d.dataset_id === id)?.snapshots;
    return this.deps
      .change((d, ctx) => {
        made.length = 0;
        let out = this.progress(d);
        for (const subject of this.due(out)) {
          const key = `${subject.failedNode}/${subject.application ?? subject.datasetIds.join(',')}`;
          const choice = chooseFailoverTarget(out, subject, observed.upNodes(), snapshotsOn);
          if (!choice.ok) {
            if (this.blocked.get(key) !== choice.reason) log.error({ node: subject.failedNode, application: subject.application, reason: choice.reason }, 'failover not possible');
            this.blocked.set(key, choice.reason);
            continue;
          }
          this.blocked.delete(key);
          const result = failover(out, subject, choice.target, { now: ctx.now, version: ctx.version, failedSilentMs: observed.silentMs(subject.failedNode) ?? 0 });
          out = result.desired;
          made.push(result.record);
        }
        return out;
      })
      .then(() => {
        for (const m of made) {
          this.deps.metrics.failover();
          log.warn({ corr: m.id, migration: m.id, application: m.application, failedNode: m.from, chosenNode: m.to, snapshots: m.failover?.snapshots, snapshotAgeSeconds: m.failover?.snapshot_age_seconds, dataWindowSeconds: m.failover?.data_window_seconds, generation: m.generation }, 'failed over');
        }
      })
      .catch((err: unknown) => log.error({ err }, 'failover not written'))
      .finally(() => (this.failingOver = false));
  }

  /** Failover records with what was observed since: the time the application ran there, the copies the failed node kept. Pure apart from reading observed state. */
  private progress(desired: Desired): Desired {
    const { observed, clock } = this.deps;
    let out = desired;
    for (const m of desired.migrations) {
      const info = m.failover;
      if (info === undefined) continue;
      let next = m;
      if (info.ready_at === null && m.application !== null) {
        const app = indexOf(desired).applications.get(m.application);
        const seen = observed.stateOf(m.to) === 'known' ? observed.get(m.to)?.containers.get(m.application) : undefined;
        if (app?.node_uuid === m.to && seen?.running && seen.generation >= m.generation && (app.health_check === undefined || seen.health === 'healthy')) {
          const now = clock();
          next = { ...next, updated_at: now, failover: { ...next.failover!, ready_at: now } };
        }
      }
      const kept = observed.get(m.from)?.report.diverged ?? [];
      for (const copy of kept) {
        if (copy.generation !== m.generation || !m.dataset_ids.includes(copy.dataset_id)) continue;
        if (next.failover!.diverged.some((c) => c.name === copy.name)) continue;
        const now = clock();
        next = { ...next, updated_at: now, failover: { ...next.failover!, diverged: [...next.failover!.diverged, { dataset_id: copy.dataset_id, node_uuid: m.from, name: copy.name, kept_at: now }] } };
      }
      for (const copy of observed.get(m.from)?.report.rejoined ?? []) {
        if (copy.generation !== m.generation || !m.dataset_ids.includes(copy.dataset_id)) continue;
        if (next.failover!.rejoined.some((c) => c.dataset_id === copy.dataset_id)) continue;
        const now = clock();
        next = { ...next, updated_at: now, failover: { ...next.failover!, rejoined: [...next.failover!.rejoined, { dataset_id: copy.dataset_id, node_uuid: m.from, at: now }] } };
      }
      if (next !== m) out = updateFailover(out, m.id, () => next);
    }
    return out;
  }
}

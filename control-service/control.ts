/**
 * The control service's core, below HTTP: the store of desired configuration, the observed
 * state agents report, and everything derived from both (agent views, routes, events,
 * placement). Route handlers call these methods; nothing here knows about fastify.
 */
import { randomUUID } from 'node:crypto';
import { MemoryVault, type Vault } from './files/vault.ts';
import type { DependencyState } from '#common/channel.ts';
import { systemClock, type Clock } from '#common/clock.ts';
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import { NodeReport, updateHolding, type Desired, type Migration, type Node, type ReplicaStatus, type ReplicationReport } from '#common/model.ts';
import type { ReplicationAnswer } from '#common/api.ts';
import { ObservedState } from './cluster/observed-state.ts';
import { replicationAnswers, ReplicationWatch } from './cluster/replication-status.ts';
import { affectedNodes } from './channel/affected-nodes.ts';
import { AgentViews } from './channel/agent-views.ts';
import { RouteService } from './channel/route-service.ts';
import { LearnedPorts, routesJson } from './channel/route-table.ts';
import { checkInvariants } from './desired/invariants.ts';
import { isLive } from './desired/leases.ts';
import { failMigration, type MigrationStart } from './desired/migrations.ts';
import { failoverSteps, updateFailover } from './cluster/failover.ts';
import { FailoverTicker } from './cluster/failover-ticker.ts';
import { FailoverRouteHold } from './cluster/failover-hold.ts';
import { DEFAULT_FAILOVER_MARGIN_MS, failoverAfterMs, MIN_FAILOVER_MARGIN_MS, ROUTE_HOLD_ACK_MS, ROUTE_HOLD_FAILED_NODE_ACK_MS } from '#common/fence-timing.ts';
import { DEFAULT_MIGRATION_DEADLINES, overdueMigrations, type MigrationDeadlines } from './cluster/migration-watch.ts';
import type { ControlFailure } from '#common/migration-protocol.ts';
import { applySchedule } from './desired/placement.ts';
import { carryInstances, instanceName, isReplicated } from './desired/instances.ts';
import { carryUpdateHolds, markUpdateHeld, settleUpdateHolds, unheldUpdates, UPDATE_HOLD_ACK_MS, type Settled } from './desired/update-holds.ts';
import { InstanceWatch } from './cluster/instance-watch.ts';
import { upsertNode } from './desired/nodes.ts';
import { indexOf, warmIndex } from './desired/desired-index.ts';
import { applyReplicas, copyApplicationPolicies } from './desired/replication.ts';
import { reuseUnchanged } from './desired/reuse.ts';
import { EventBus } from './events/event-bus.ts';
import { chooseReplicas, replicasDiffer, type ReplicaChoice } from './scheduler/replicas.ts';
import { schedule } from './scheduler/schedule.ts';
import type { ConfigStore, StoreSnapshot, UpdateContext } from './store/config-store.ts';
import { entryJson } from './store/encode.ts';
import type { Identity } from '#common/identity.ts';
import { checkOwnReport, nodeFromReport } from './cluster/node-trust.ts';
import { validateDesired } from './store/validate.ts';
import { NO_CONTROL_METRICS, type ControlMetrics } from './metrics.ts';
import { SOLE_LEADER, type Leadership } from './cluster/leadership.ts';
import type { NodeLiveness } from './cluster/node-liveness.ts';

export interface ControlOptions {
  store: ConfigStore;
  log: Logger;
  /** Time as an input (docs/DESIGN.md §12); the system clock by default. */
  clock?: Clock;
  /** The node lease TTL: a node silent for longer is unknown. Default 10 s. */
  nodeTimeoutMs?: number;
  /** Further silence after which an unknown node is down. Default 30 s. */
  nodeDownGraceMs?: number;
  /** When the control service ends a stuck move itself (cluster/migration-watch.ts). */
  migrationDeadlines?: MigrationDeadlines;
  /** Seed of the scheduler's random strategy. */
  seed?: number;
  /** A replica's node silent for longer is replaced by another (docs/DESIGN.md §17). Default 300 s. */
  replicaReplaceAfterMs?: number;
  /**
   * Silence beyond the lease TTL after which an application of a silent node fails over
   * (docs/DESIGN.md §18, common/fence-timing.ts): it covers the agent's self-fencing and
   * clock-rate differences. Default 1 s; at least 0.5 s. Null: never fail over.
   */
  failoverMarginMs?: number | null;
  /** How long a failover waits for the proxies to hold its route before the promotion (default ROUTE_HOLD_ACK_MS). */
  failoverHoldAckMs?: number;
  /** Where migrations' phases and failovers are counted (docs/DESIGN.md §25); none by default. */
  metrics?: ControlMetrics;
  /** Contents of the files projects ship, secrets sealed (docs/DESIGN.md §22). Default: in memory, under a random key. */
  vault?: Vault;
  /**
   * Whether this process leads (docs/DESIGN.md §28): only the leader writes, runs the
   * scheduler's sweeps, failover and migration bookkeeping. Default: always (the file store).
   */
  leadership?: Leadership;
  /** Node liveness kept where a next leader finds it (etcd); none by default. */
  liveness?: NodeLiveness;
}

export interface ChangeContext extends UpdateContext {
  now: number;
  /** For a migration started by this change. */
  start: MigrationStart;
}

export type Change = (desired: Desired, ctx: ChangeContext) => Desired | null | undefined;

export class Control {
  readonly store: ConfigStore;
  readonly log: Logger;
  readonly clock: () => number;
  readonly observed: ObservedState;
  readonly views: AgentViews;
  readonly routes: RouteService;
  /** Container ports each application was seen publishing (its image's EXPOSE too), for its name routes. */
  private readonly learnedPorts: LearnedPorts;
  readonly events: EventBus;
  readonly vault: Vault;
  private readonly seed: number;
  /** The scheduler's reasons, from the last change. */
  private unschedulableNow = new Map<string, string>();
  private lastMigrations: readonly Migration[] = [];
  /** The document of the previous commit, to find what a commit changed. */
  private lastDesired!: Desired;
  private ticker: NodeJS.Timeout | null = null;
  /** Per node, the stored entry last found equal to what its report says. */
  private readonly registered = new Map<string, Node>();
  readonly replicaReplaceAfterMs: number;
  /** When this process started: a node not heard from since counts as silent since then. */
  private readonly startedAt: number;
  private readonly replicationWatch = new ReplicationWatch();
  private readonly deadlines: MigrationDeadlines;
  /** A tick's migration failures are being written: the next tick does not decide again meanwhile. */
  private failing = false;
  /** Failover after this much silence: lease TTL + margin (null: never). Independent of `down`, which is for status. */
  readonly failoverAfterMs: number | null;
  /** Failover decisions, once a second and on time (cluster/failover-ticker.ts). */
  private readonly failovers: FailoverTicker;
  /** Holds each failover's route until the proxies applied it, then lets the chosen node promote (docs/DESIGN.md §18). */
  private readonly routeHold: FailoverRouteHold;
  /** The same wait for a single application's update: its old container stops once the proxies hold (docs/DESIGN.md §30). */
  private readonly updateHold: FailoverRouteHold;
  private settlingUpdates = false;
  /** Per node, a host-key change its reports claim and the control service refused (docs/DESIGN.md §23). */
  readonly keyChangesRefused = new Map<string, { recorded: string; claimed: string; at: number }>();
  private certificateNodes: { nodes: readonly Node[]; byName: Map<string, string> } | null = null;
  private readonly metrics: ControlMetrics;
  /** Instances of applications that run several (docs/DESIGN.md §30): placing, draining, rolling. */
  private readonly instances: InstanceWatch;
  private planningInstances = false;
  readonly leadership: Leadership;
  private readonly liveness: NodeLiveness | null;

  constructor(options: ControlOptions) {
    this.leadership = options.leadership ?? SOLE_LEADER;
    this.liveness = options.liveness ?? null;
    this.store = options.store;
    this.log = options.log;
    this.vault = options.vault ?? new MemoryVault();
    const clock = options.clock ?? systemClock;
    this.clock = () => clock.now();
    this.seed = options.seed ?? 1;
    this.metrics = options.metrics ?? NO_CONTROL_METRICS;
    this.replicaReplaceAfterMs = options.replicaReplaceAfterMs ?? 300_000;
    this.startedAt = this.clock();
    this.events = new EventBus(this.clock);
    this.observed = new ObservedState(this.clock, options.nodeTimeoutMs ?? 10_000, options.nodeDownGraceMs ?? 30_000);
    this.deadlines = options.migrationDeadlines ?? DEFAULT_MIGRATION_DEADLINES;
    const margin = options.failoverMarginMs === null ? null : Math.max(MIN_FAILOVER_MARGIN_MS, options.failoverMarginMs ?? DEFAULT_FAILOVER_MARGIN_MS);
    this.failoverAfterMs = margin === null ? null : failoverAfterMs(this.observed.timeoutMs, margin);
    this.failovers = new FailoverTicker({
      desired: () => this.desired,
      observed: this.observed,
      change: (fn) => this.change(fn),
      leadership: this.leadership,
      log: this.log,
      metrics: this.metrics,
      clock: this.clock,
      afterMs: this.failoverAfterMs,
    });
    this.views = new AgentViews(
      () => this.desired,
      (node) => this.observed.get(node)?.datasetIds,
      (name) => this.dependencyState(name),
    );
    this.learnedPorts = new LearnedPorts();
    this.routes = new RouteService(
      () => routesJson(this.desired, (node, name) => this.observed.get(node)?.containers.get(name), this.learnedPorts),
      this.clock,
      this.observed.timeoutMs,
    );
    this.routeHold = new FailoverRouteHold({
      clock,
      routeVersion: () => this.routes.get().version,
      acks: (version) => this.routes.acks(version),
      release: (id, heldAt, unacked) =>
        this.change((d) => updateFailover(d, id, (m) => (m.failover?.routes_held_at === null ? { ...m, updated_at: heldAt, failover: { ...m.failover, routes_held_at: heldAt, ...(unacked.length > 0 ? { routes_unacked: unacked } : {}) } } : m))).then(() => undefined),
      boundMs: options.failoverHoldAckMs ?? ROUTE_HOLD_ACK_MS,
      failedNodeBoundMs: Math.min(options.failoverHoldAckMs ?? ROUTE_HOLD_ACK_MS, ROUTE_HOLD_FAILED_NODE_ACK_MS),
      log: this.log.child({ subsystem: 'failover' }),
    });
    this.updateHold = new FailoverRouteHold({
      clock,
      routeVersion: () => this.routes.get().version,
      acks: (version) => this.routes.acks(version),
      release: (id, heldAt, unacked) => this.change((d) => markUpdateHeld(d, id, heldAt, unacked)).then(() => undefined),
      boundMs: UPDATE_HOLD_ACK_MS,
      failedNodeBoundMs: UPDATE_HOLD_ACK_MS,
      log: this.log.child({ subsystem: 'update' }),
      messages: { held: 'update route held by every live proxy', late: 'proxies did not ack the update hold in time; stopping the old container anyway' },
    });
    this.routes.onAck = () => {
      this.routeHold.check();
      // Only the leader writes `held_at` (a follower's attempt would only be refused).
      if (this.leadership.isLeader()) this.updateHold.check();
    };
    this.instances = new InstanceWatch({ observed: this.observed, routeVersion: () => this.routes.get().version, acks: (v) => this.routes.acks(v), clock: this.clock, seed: this.seed });
    this.store.onCommit((snapshot) => this.committed(snapshot));
    this.leadership.onChange((leading) => {
      if (leading) void this.seedLiveness();
    });
  }

  /**
   * A new leader learns how long each node has been silent from the liveness leases (errs
   * late); a node with none was silent a TTL already and is judged from now on.
   */
  private async seedLiveness(): Promise<void> {
    const elected = this.clock();
    let seen = new Map<string, number>();
    try {
      seen = (await this.liveness?.lastSeen()) ?? seen;
    } catch (err) {
      this.log.warn({ err }, 'node liveness not read; silent nodes are judged from the election on');
    }
    for (const node of this.desired.nodes) this.observed.seed(node.uuid, seen.get(node.uuid) ?? elected);
    this.log.info({ nodes: this.desired.nodes.length, withLease: seen.size }, 'node liveness seeded');
  }

  /**
   * How application `name` is doing now, for the applications that depend on it
   * (docs/DESIGN.md §22): its container on its node, as that node last reported; nothing while
   * the node is not up (unknown is not started).
   */
  dependencyState(name: string): DependencyState {
    const app = indexOf(this.desired).applications.get(name);
    if (app !== undefined && isReplicated(app)) {
      // Several instances: started once one runs, healthy once one is.
      const states = (app.placed ?? []).filter((i) => i.draining_since === undefined).map((i) => (this.observed.stateOf(i.node_uuid) === 'known' ? this.observed.get(i.node_uuid)?.containers.get(instanceName(app.name, i.id)) : undefined));
      return { started: states.some((c) => c?.running === true), healthy: states.some((c) => c?.running === true && c.health === 'healthy'), completed: false };
    }
    const node = app?.node_uuid;
    const record = node === undefined ? undefined : this.observed.get(node);
    const c = node !== undefined && this.observed.stateOf(node) === 'known' ? record?.containers.get(name) : undefined;
    if (c === undefined) return { started: false, healthy: false, completed: false };
    const completed = !c.running && c.exit_code === 0;
    return { started: c.running || completed, healthy: c.running && c.health === 'healthy', completed };
  }

  /** Nodes running an application that depends on one that runs on `node` (their views show its state). */
  private dependantNodes(node: string): string[] {
    const out = new Set<string>();
    const index = indexOf(this.desired);
    // Instances (docs/DESIGN.md §30) count on their nodes, on both sides of a dependency.
    const on = (name: string) => {
      const dep = index.applications.get(name);
      return dep?.node_uuid === node || (dep?.placed ?? []).some((i) => i.node_uuid === node);
    };
    for (const app of this.desired.applications) {
      if (app.depends_on === undefined || !app.depends_on.some((d) => on(d.application))) continue;
      if (app.node_uuid !== undefined) out.add(app.node_uuid);
      for (const i of app.placed ?? []) out.add(i.node_uuid);
    }
    return [...out];
  }

  /** Loads the store and starts the once-a-second sweep (silent nodes, expired leases). */
  async start(): Promise<void> {
    const snapshot = await this.store.load();
    // The lookups and the cross-entry rules are cached per collection: built now, the first
    // requests do not pay for them (~0.3 s at 10k). A stored document that breaks a rule
    // (written by an older drover, say) is served; the next change must fix it.
    warmIndex(snapshot.desired);
    const issues = checkInvariants(snapshot.desired);
    if (issues.length > 0) this.log.warn({ issues: issues.slice(0, 20).map((i) => `${i.path.join('.')}: ${i.message}`), count: issues.length }, 'the stored configuration breaks rules');
    this.lastMigrations = snapshot.desired.migrations;
    this.lastDesired = snapshot.desired;
    this.routeHold.follow(snapshot.desired.migrations);
    this.updateHold.followHolds(unheldUpdates(snapshot.desired).map((u) => ({ id: u.id, from: null })));
    this.ticker = setInterval(() => void this.tick(), 1000);
    this.ticker.unref();
  }

  async stop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    this.failovers.stop();
    this.routeHold.stop();
    this.updateHold.stop();
    this.views.wakeAll();
    this.routes.wakeAll();
    await this.store.close();
  }

  get snapshot(): StoreSnapshot {
    return this.store.current();
  }

  get desired(): Desired {
    return this.store.current().desired;
  }

  get unschedulable(): ReadonlyMap<string, string> {
    return this.unschedulableNow;
  }

  /**
   * Applies `fn` to the desired configuration, places what the scheduler can, checks the
   * whole result (zod, then the cross-entry rules) and stores it. Nothing changes when any
   * step refuses.
   * @throws z.ZodError or DroverError DROVER_INVALID_CONFIGURATION (400), or what `fn` throws.
   */
  change(fn: Change): Promise<StoreSnapshot> {
    if (!this.leadership.isLeader()) {
      return Promise.reject(new DroverError('DROVER_NOT_LEADER', 'this control service is not the leader; nothing was changed', { detail: { leader: this.leadership.leaderUrl() } }));
    }
    let ended: Settled[] = [];
    return this.store
      .update((desired, ctx) => {
        const out = this.pipeline(fn, desired, ctx);
        this.unschedulableNow = out.unschedulable;
        ended = out.desired === desired ? [] : out.ended;
        return out.desired === desired ? null : out.desired;
      })
      .then((snapshot) => {
        for (const e of ended) {
          const fields = { corr: e.id, update: e.id, application: e.application, heldForMs: e.heldForMs };
          if (e.why === 'ready') this.log.info(fields, 'update route released: the new container is ready');
          else this.log.warn({ ...fields, deadlineMs: this.deadlines.handoffMs }, 'update hold ended at its deadline: the new container was not ready');
        }
        return snapshot;
      });
  }

  /** What `change(fn)` would store, without storing it (a dry run). Same checks, same errors. */
  preview(fn: Change): { desired: Desired; unschedulable: Map<string, string> } {
    const snap = this.snapshot;
    const { desired, unschedulable } = this.pipeline(fn, snap.desired, { version: snap.version + 1, tagMatches: (t) => t === snap.tag });
    return { desired, unschedulable };
  }

  private pipeline(fn: Change, desired: Desired, ctx: UpdateContext): { desired: Desired; unschedulable: Map<string, string>; ended: Settled[] } {
    const now = this.clock();
    const start: MigrationStart = {
      now,
      version: ctx.version,
      nodeSilence: (uuid) => ({ state: this.observed.stateOf(uuid) ?? 'unknown', host: this.observed.get(uuid)?.report.host ?? indexOf(desired).nodes.get(uuid)?.host ?? uuid, silentMs: this.observed.silentMs(uuid) }),
    };
    const next = fn(desired, { version: ctx.version, tagMatches: (t) => ctx.tagMatches(t), now, start });
    const written = next === null || next === undefined || next === desired ? desired : validateDesired(next);
    // A single application's update holds its routes (docs/DESIGN.md §30); holds whose container is ready, or whose deadline passed, end.
    const holds = settleUpdateHolds(carryUpdateHolds(desired, written, { now, newId: randomUUID }), { now, deadlineMs: this.deadlines.handoffMs, seen: (app) => this.seenContainer(app.node_uuid, app.name) });
    const { ended } = holds;
    const instanced = this.instances.plan(carryInstances(desired, holds.desired), now);
    const changed = instanced.desired;
    const planned = schedule({ desired: changed, up: this.observed.upNodes(), seed: this.seed });
    for (const [name, reason] of instanced.unschedulable) planned.unschedulable.set(name, reason);
    const scheduled = applySchedule(changed, planned, start);
    const copied = copyApplicationPolicies(desired, scheduled.desired);
    const placed = { desired: applyReplicas(copied, this.replicaChoices(copied)), unschedulable: scheduled.unschedulable };
    if (placed.desired === desired) return { desired, unschedulable: placed.unschedulable, ended: [] };
    const result = validateDesired(reuseUnchanged(desired, validateDesired(placed.desired)));
    if (result === desired) return { desired, unschedulable: placed.unschedulable, ended: [] };
    const issues = checkInvariants(result);
    if (issues.length > 0) {
      throw new DroverError('DROVER_INVALID_CONFIGURATION', 'The configuration would break a rule; nothing was changed.', {
        detail: { issues: issues.map((i) => ({ path: i.path.join('.'), message: i.message })) },
      });
    }
    return { desired: result, unschedulable: placed.unschedulable, ended };
  }

  /** Application `name`'s container on `node` as the node last reported it, while the node is known. */
  private seenContainer(node: string | undefined, name: string) {
    return node !== undefined && this.observed.stateOf(node) === 'known' ? this.observed.get(node)?.containers.get(name) : undefined;
  }

  /** Update holds whose new container is ready, or whose deadline passed, end now (decided again inside the write). */
  private tickUpdateHolds(): void {
    if (this.settlingUpdates || !this.leadership.isLeader()) return;
    const desired = this.desired;
    if (!desired.applications.some((a) => updateHolding(a.update_hold))) return;
    const due = settleUpdateHolds(desired, { now: this.clock(), deadlineMs: this.deadlines.handoffMs, seen: (app) => this.seenContainer(app.node_uuid, app.name) });
    if (due.ended.length === 0) return;
    this.settlingUpdates = true;
    this.change(() => null)
      .catch((err: unknown) => this.log.error({ err }, 'update holds not ended'))
      .finally(() => (this.settlingUpdates = false));
  }

  /** Where the scheduler would put each replicated dataset's replicas now (scheduler/replicas.ts). */
  replicaChoices(desired: Desired = this.desired): Map<string, ReplicaChoice> {
    if (indexOf(desired).replicatedDatasets.length === 0) return new Map();
    const now = this.clock();
    return chooseReplicas({
      desired,
      up: this.observed.upNodes(),
      silentForMs: (node) => now - (this.observed.get(node)?.lastSeen ?? this.startedAt),
      replaceAfterMs: this.replicaReplaceAfterMs,
      holding: (id) => this.observed.holding(id),
    });
  }

  /** `GET /v1/drover/replication`: every replicated dataset with its replicas' state, lag and problems. */
  replication(): ReplicationAnswer[] {
    const desired = this.desired;
    if (indexOf(desired).replicatedDatasets.length === 0) return [];
    return replicationAnswers({
      desired,
      now: this.clock(),
      choices: this.replicaChoices(desired),
      // The newest of the node's full and replication-only reports (§38), not its last report's.
      reportOf: (node) => {
        const record = this.observed.replicationOf(node);
        return record ? { replication: record.statuses, receivedAt: record.receivedAt } : undefined;
      },
      keptOn: (node) => this.observed.get(node)?.report.diverged,
    });
  }

  /** Fails with 412 unless `tag` (when given) is the configuration's tag right now. */
  static requireTag(ctx: ChangeContext, tag: string | undefined): void {
    if (tag !== undefined && !ctx.tagMatches(tag)) {
      throw new DroverError('DROVER_CONFIGURATION_CHANGED', 'The configuration has changed since the provided tag; read it again.', {
        detail: { tag },
      });
    }
  }

  /**
   * An agent's report: kept in memory; registers the node in the desired configuration
   * the first time (and when its address, labels or endpoints change).
   * @returns the version of the node's agent view, for the next long-poll.
   */
  async report(report: NodeReport, raw?: string, identity: Identity = { role: 'user', name: 'plain-loopback' }): Promise<{ version: number }> {
    let known = indexOf(this.desired).nodes.get(report.uuid);
    // Refused before anything of the report is kept (docs/DESIGN.md §23).
    let { node, keyChangeRefused } = nodeFromReport(report, known, identity, identity.role === 'node' ? this.nodeOfCertificate(identity.name) : undefined);
    const effect = this.observed.report(report, raw);
    if (this.liveness && this.leadership.isLeader()) this.liveness.reported(report.uuid);
    if (effect.first || effect.cameBack) {
      this.log.info({ node: report.uuid, host: report.host, era: report.era }, effect.first ? 'node registered' : 'node came back');
      this.events.emit({ type: 'node', data: { uuid: report.uuid, host: report.host, state: 'known' } });
    }
    this.noteKeyChange(report, keyChangeRefused);
    if (effect.datasetsChanged) this.views.changed([report.uuid]);
    if (effect.containersChanged) this.views.changed(this.dependantNodes(report.uuid));
    if (effect.containersChanged) this.routes.changed();
    if (effect.containersChanged) this.tickInstances();
    if (effect.containersChanged) this.tickUpdateHolds();
    // A repeated report names the node as the last one did: when the stored entry is the one
    // found equal then, there is nothing to compare.
    if (known === undefined || effect.changed || this.registered.get(report.uuid) !== known) {
      if (!known || entryJson(known) !== JSON.stringify(node)) {
        await this.change((d) => {
          // Decided again on the document as it is inside the write: two first reports racing bind once.
          known = indexOf(d).nodes.get(report.uuid);
          ({ node, keyChangeRefused } = nodeFromReport(report, known, identity, identity.role === 'node' ? uuidOfName(d.nodes, identity.name) : undefined));
          return upsertNode(d, node);
        });
        this.registered.delete(report.uuid);
      } else {
        this.registered.set(report.uuid, known);
        if (effect.first || effect.cameBack) await this.change(() => null);
      }
    } else if (effect.first || effect.cameBack) await this.change(() => null);
    return { version: this.views.get(report.uuid).version };
  }

  /**
   * A report as it arrived (JSON text). The steady state is an agent repeating its last
   * report word for word: that is recognized without parsing or validating it again.
   * @throws DroverError DROVER_INVALID_REQUEST (not JSON) or z.ZodError (not a NodeReport): 400.
   */
  reportText(text: string, identity?: Identity): Promise<{ version: number }> {
    const same = this.observed.sameAsLast(text);
    if (same) return this.report(same, text, identity);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new DroverError('DROVER_INVALID_REQUEST', 'The body is not valid JSON.');
    }
    return this.report(NodeReport.parse(json), text, identity);
  }

  /**
   * A primary's replication status alone (docs/DESIGN.md §38), under the full report's rule
   * own-report: merged into what is known of the node when newer (its `seq`); the node's last
   * report, its lease and its liveness are untouched. A replica's change of state is an event
   * at once, not at the next tick.
   * @throws DroverError DROVER_NODE_IDENTITY_MISMATCH (403)
   */
  replicationReport(report: ReplicationReport, identity: Identity = { role: 'user', name: 'plain-loopback' }): { merged: boolean } {
    const bound = identity.role === 'node' ? this.nodeOfCertificate(identity.name) : undefined;
    checkOwnReport(report.uuid, indexOf(this.desired).nodes.get(report.uuid), identity, bound);
    if (identity.role === 'node' && bound === undefined) {
      // The full report binds a certificate to its node; a replication report cannot.
      throw new DroverError('DROVER_NODE_IDENTITY_MISMATCH', `Report refused: rule own-report: node certificate '${identity.name}' has not reported as a node yet.`, {
        detail: { rule: 'own-report', name: identity.name, node_uuid: report.uuid },
      });
    }
    const before = this.observed.replicationOf(report.uuid)?.statuses;
    const refused = this.observed.replication(report);
    if (refused !== null) {
      this.log.debug({ node: report.uuid, seq: report.seq, why: refused }, 'replication report not merged');
      return { merged: false };
    }
    // A replica's change of state is news now; a lag problem's coming and going waits for the tick
    // (answering for every replicated dataset at each step of each primary would cost more).
    if (this.leadership.isLeader() && statesChanged(before, report.replication)) this.replicationEvents();
    return { merged: true };
  }

  /** The node uuid a node certificate's name is bound to (Node.identity), if it reported. */
  nodeOfCertificate(name: string): string | undefined {
    const nodes = this.desired.nodes;
    if (this.certificateNodes?.nodes !== nodes) this.certificateNodes = { nodes, byName: new Map(nodes.flatMap((n) => (n.identity ? [[n.identity.name, n.uuid] as const] : []))) };
    return this.certificateNodes.byName.get(name);
  }

  /** A refused host-key change is logged and an event once per claimed key; it stays in the node's status until the report agrees again. */
  private noteKeyChange(report: NodeReport, refused: { recorded: string; claimed: string } | null): void {
    const before = this.keyChangesRefused.get(report.uuid);
    if (refused === null) {
      if (before !== undefined) this.keyChangesRefused.delete(report.uuid);
      return;
    }
    if (before?.claimed === refused.claimed) return;
    this.keyChangesRefused.set(report.uuid, { ...refused, at: this.clock() });
    this.log.warn({ node: report.uuid, host: report.host, recorded: refused.recorded, claimed: refused.claimed }, 'node host key change refused');
    this.events.emit({ type: 'security', data: { uuid: report.uuid, host: report.host, problem: keyChangeReason(refused) } });
  }

  /**
   * The control service's own end of a migration (common/migration-protocol.ts
   * `ControlFailure`): `give-up` before handoff, `roll-back` in handoff.
   * @throws DroverError DROVER_MIGRATION_NOT_FOUND (404), DROVER_MIGRATION_BAD_TRANSITION (409, saying why).
   */
  async failMigration(id: string, kind: ControlFailure, reason: string): Promise<Migration> {
    let failed: Migration | undefined;
    await this.change((d, ctx) => {
      const out = failMigration(d, id, kind, reason, ctx.now);
      failed = out.migration;
      return out.desired;
    });
    this.log.warn({ corr: id, migration: id, kind, reason }, kind === 'roll-back' ? 'migration rolled back' : 'migration given up');
    return failed!;
  }

  /**
   * Once a second: nodes whose lease lapsed become unknown, then down; stuck moves end;
   * expired leases are dropped. Resolves once the stuck moves' write settled (tests await it).
   */
  tick(): Promise<void> {
    // Followers keep no observed state and decide nothing: the leader does (docs/DESIGN.md §28).
    if (!this.leadership.isLeader()) return Promise.resolve();
    let ending: Promise<void> = Promise.resolve();
    const { unknown, down } = this.observed.sweep();
    for (const [uuid, state] of [...unknown.map((u) => [u, 'unknown'] as const), ...down.map((u) => [u, 'down'] as const)]) {
      const host = this.observed.get(uuid)?.report.host ?? null;
      this.log.warn({ node: uuid, host, silentMs: this.observed.silentMs(uuid) }, state === 'down' ? 'node is down' : 'node went silent');
      this.events.emit({ type: 'node', data: { uuid, host, state } });
    }
    const now = this.clock();
    if (!this.failing && overdueMigrations(this.desired, this.observed, now, this.deadlines).length > 0) {
      // Decided again inside the write, on the record as it is then: a step that landed
      // meanwhile is not overruled by a decision taken before it.
      this.failing = true;
      const ended: { id: string; kind: ControlFailure; reason: string }[] = [];
      ending = this.change((d, ctx) => {
        let out = d;
        ended.length = 0;
        for (const o of overdueMigrations(d, this.observed, ctx.now, this.deadlines)) {
          out = failMigration(out, o.id, o.kind, o.reason, ctx.now).desired;
          ended.push(o);
        }
        return out;
      })
        .then(() => {
          for (const o of ended) this.log.warn({ corr: o.id, migration: o.id, kind: o.kind, reason: o.reason }, o.kind === 'roll-back' ? 'migration rolled back' : 'migration given up');
        })
        .catch((err: unknown) => this.log.error({ err }, 'overdue migrations not ended'))
        .finally(() => (this.failing = false));
    }
    if (this.desired.leases.some((l) => !isLive(l, now))) {
      this.change((d) => ({ ...d, leases: d.leases.filter((l) => isLive(l, now)) })).catch((err: unknown) => this.log.error({ err }, 'expired leases not dropped'));
    }
    this.tickReplication();
    this.routeHold.check();
    this.updateHold.check();
    this.tickInstances();
    this.tickUpdateHolds();
    return Promise.all([ending, this.failovers.tick()]).then(() => undefined);
  }

  /**
   * Replicas whose node stayed silent too long are replaced (a change the scheduler makes),
   * and each replica's change of state, or of being a problem, is an event.
   */
  private tickReplication(): void {
    const desired = this.desired;
    if (indexOf(desired).replicatedDatasets.length === 0) return;
    const choices = this.replicaChoices(desired);
    const index = indexOf(desired);
    if ([...choices].some(([id, choice]) => { const d = index.datasets.get(id); return d !== undefined && replicasDiffer(d, choice); })) {
      this.change(() => null).catch((err: unknown) => this.log.error({ err }, 'replicas not rescheduled'));
    }
    this.replicationEvents();
  }

  /** Each replica's change of state, or of being a problem, since the last call: an event. */
  private replicationEvents(): void {
    if (indexOf(this.desired).replicatedDatasets.length === 0) return;
    for (const data of this.replicationWatch.changes(this.replication())) {
      if (data.problem !== null) this.log.warn({ datasetId: data.dataset_id, replica: data.replica, state: data.state, problem: data.problem }, 'replica became a problem');
      this.events.emit({ type: 'replication', data });
    }
  }

  /** Instances to place, drain, remove or roll now (docs/DESIGN.md §30): written when the plan changes anything. */
  private tickInstances(): void {
    if (this.planningInstances) return;
    const desired = this.desired;
    try {
      if (!desired.applications.some(isReplicated) || this.instances.plan(desired).desired === desired) return;
    } catch (err) {
      // Called from the ticker: a fault here is logged, never the end of the process.
      this.log.error({ err }, 'instances not planned');
      return;
    }
    this.planningInstances = true;
    this.change(() => null)
      .catch((err: unknown) => this.log.error({ err }, 'instances not rescheduled'))
      .finally(() => (this.planningInstances = false));
  }

  private committed(snapshot: StoreSnapshot): void {
    const beforeDesired = this.lastDesired;
    this.views.changed(affectedNodes(this.lastDesired, snapshot.desired, (id) => this.observed.holding(id)));
    this.lastDesired = snapshot.desired;
    this.routes.changed();
    this.instances.noteDraining(snapshot.desired);
    this.events.emit({ type: 'configuration', data: { version: snapshot.version, tag: snapshot.tag } });
    const before = new Set(this.lastMigrations);
    let phases: Map<string, string> | null = null;
    let previous: Map<string, Migration> | null = null;
    for (const m of snapshot.desired.migrations) {
      if (before.has(m)) continue;
      this.events.emit({ type: 'migration', data: m });
      if (m.failover !== undefined) {
        previous ??= new Map(this.lastMigrations.map((p) => [p.id, p]));
        for (const step of failoverSteps(previous.get(m.id), m)) this.log.info({ corr: m.id, migration: m.id, application: m.application, ...step.fields }, step.msg);
        continue;
      }
      phases ??= new Map(this.lastMigrations.map((p) => [p.id, p.phase]));
      if (phases.get(m.id) === m.phase) continue;
      this.metrics.migrationPhase(m.phase);
      // corr: the migration's id, in every process's records of it (docs/DESIGN.md §25).
      this.log.info({ corr: m.id, application: m.application, from: m.from, to: m.to, phase: m.phase, generation: m.generation, ...(m.error ? { error: m.error } : {}) }, 'migration entered a phase');
    }
    this.lastMigrations = snapshot.desired.migrations;
    this.routeHold.follow(snapshot.desired.migrations);
    this.noteUpdateHolds(beforeDesired, snapshot.desired);
  }

  /** New update holds are logged (the update's `corr` starts here) and waited on until the proxies applied them. */
  private noteUpdateHolds(before: Desired, after: Desired): void {
    if (before.applications === after.applications) return;
    const had = new Set(before.applications.flatMap((a) => (a.update_hold === undefined ? [] : [a.update_hold.id])));
    for (const app of after.applications) {
      const hold = app.update_hold;
      if (hold === undefined || had.has(hold.id)) continue;
      this.log.info({ corr: hold.id, update: hold.id, application: app.name, node: app.node_uuid }, 'update holds its routes until the new container is ready');
    }
    this.updateHold.followHolds(unheldUpdates(after).map((u) => ({ id: u.id, from: null })));
  }
}

function uuidOfName(nodes: readonly Node[], name: string): string | undefined {
  return nodes.find((n) => n.identity?.name === name)?.uuid;
}

/** The status line of a refused host-key change. */
export function keyChangeReason(refused: { recorded: string; claimed: string }): string {
  return `ssh host key change refused: the node reports ${refused.claimed}, the control service recorded ${refused.recorded} when it joined; senders keep pinning the recorded key (replace the node's entry to accept a new key)`;
}

/** Whether a replica's state differs between two statuses of one primary (one that appeared or went counts). */
function statesChanged(before: readonly ReplicaStatus[] | undefined, after: readonly ReplicaStatus[]): boolean {
  const key = (list: readonly ReplicaStatus[]) => list.map((s) => `${s.dataset_id} ${s.replica} ${s.state}`).sort().join(',');
  return before === undefined || key(before) !== key(after);
}

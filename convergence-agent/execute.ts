/**
 * The executor (docs/DESIGN.md §4): thin, one exhaustive switch over the Change union.
 * Each change is isolated — one that throws is logged, remembered and reported, and never
 * stops the others. A change that failed is retried with capped exponential backoff (per
 * change: kind + subject); the planner keeps proposing it, the executor holds it back.
 */
import { KeyedBackoff, type Backoff } from '#common/backoff.ts';
import { toDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { NodeProblem } from '#common/model.ts';
import type { Clock } from '#common/clock.ts';
import type { ContainerRuntime } from './container-runtime.ts';
import type { MigrationSteps } from './migration/jobs.ts';
import { changeSubject, type Change } from './plan/types.ts';
import { corrOf, type Correlations } from './plan/correlation.ts';
import type { RestartLedger } from './restart-ledger.ts';
import type { Gates } from './gate/gates.ts';
import type { AppFiles } from './files/app-files.ts';
import type { ContainerSpec } from './plan/types.ts';
import type { DatasetStore } from './zfs/types.ts';
import type { AgentMetrics } from './metrics.ts';

export interface ExecutorDeps {
  store: DatasetStore;
  runtime: ContainerRuntime;
  ledger: RestartLedger;
  clock: Clock;
  log: Logger;
  /** Grace period of a stop before docker kills the process. */
  stopTimeoutSeconds?: number;
  /** Changes run at the same time (they touch different subjects). */
  concurrency?: number;
  /** Per-change retry schedule; default 1 s doubling to 60 s. */
  backoff?: Backoff;
  /** The migration steps (migration/jobs.ts); a migration change fails without them. */
  migrations?: MigrationSteps;
  /** This node's uuid, for the migration steps it posts. */
  nodeUuid?: string;
  /** Container gates (gate/gates.ts); a prestart-container fails without them. */
  gates?: Gates | null;
  /** Where changes are counted by kind and outcome (docs/DESIGN.md §25). */
  metrics?: Pick<AgentMetrics, 'change'>;
  /** Files that travel with applications (files/app-files.ts); a container with files fails without them. */
  files?: AppFiles | null;
}

export interface ExecutionResult {
  applied: Change[];
  failed: { change: Change; error: string }[];
  /** Changes held back by their backoff, and failures, for the report. */
  problems: NodeProblem[];
  /** The soonest a held-back change may run again; null when none is held. */
  retryInMs: number | null;
}

/** Pure: the key of a change for backoff; the same step on the same subject. */
export function changeKey(change: Change): string {
  return `${change.kind} ${changeSubject(change)}`;
}

export class Executor {
  /** Failed changes by `changeKey`, with their last error message. */
  private readonly failures: KeyedBackoff<string>;

  constructor(private readonly deps: ExecutorDeps) {
    this.failures = new KeyedBackoff(deps.backoff ?? { initialMs: 1_000, capMs: 60_000 });
  }

  /**
   * Runs `changes`; `lent` names the migration or failover each subject's changes work for
   * (plan/correlation.ts), put in their records as `corr`. `partial`: not a whole pass's
   * changes (the loop's steps between passes), so other changes' backoffs are kept.
   */
  async execute(changes: Change[], lent: Correlations = new Map(), options: { partial?: boolean } = {}): Promise<ExecutionResult> {
    const now = this.deps.clock.now();
    const keys = new Set(changes.map(changeKey));
    // A change the planner no longer proposes has no backoff to keep; a partial run (a few
    // changes applied between passes) says nothing about the others.
    if (options.partial !== true) this.failures.retain(keys);

    const result: ExecutionResult = { applied: [], failed: [], problems: [], retryInMs: null };
    const due: Change[] = [];
    for (const change of changes) {
      const held = this.failures.held(changeKey(change), now);
      if (held) {
        result.problems.push({
          subject: changeSubject(change),
          kind: 'failed',
          reason: `${change.kind} failed ${held.failures} time(s), retrying in ${Math.ceil(held.waitMs / 1000)} s: ${held.detail}`,
        });
        result.retryInMs = Math.min(result.retryInMs ?? Infinity, held.waitMs);
      } else {
        due.push(change);
      }
    }

    // Changes that name others to run `after` go second, and only when those applied.
    const first = due.filter((c) => !afterOf(c));
    const second = due.filter((c) => afterOf(c));
    await runLimited(first, this.deps.concurrency ?? 4, (change) => this.applyLogged(change, result, lent));
    const appliedSubjects = new Set(result.applied.map(changeSubject));
    const ready = second.filter((c) => afterOf(c)!.every((s) => appliedSubjects.has(s)));
    for (const c of second) {
      if (!ready.includes(c)) result.problems.push({ subject: changeSubject(c), kind: 'blocked', reason: `${c.kind} waits for ${afterOf(c)!.join(', ')}` });
    }
    await runLimited(ready, this.deps.concurrency ?? 4, (change) => this.applyLogged(change, result, lent));
    return result;
  }

  private async applyLogged(change: Change, result: ExecutionResult, lent: Correlations): Promise<void> {
    const corr = corrOf(change, lent);
    const log = this.deps.log.child({ change: change.kind, subject: changeSubject(change), ...(corr === null ? {} : { corr }) });
    try {
      await this.apply(change);
      this.failures.succeeded(changeKey(change));
      result.applied.push(change);
      this.deps.metrics?.change(change.kind, 'applied');
      log.info('change applied');
    } catch (err) {
      const error = toDroverError(err);
      const { failures, delayMs: delay } = this.failures.failed(changeKey(change), this.deps.clock.now(), error.message);
      result.failed.push({ change, error: error.message });
      this.deps.metrics?.change(change.kind, 'failed');
      result.problems.push({ subject: changeSubject(change), kind: 'failed', reason: `${change.kind}: ${error.message}` });
      result.retryInMs = Math.min(result.retryInMs ?? Infinity, delay);
      log.warn({ err: error, failures }, 'change failed');
    }
  }

  /** One change; throws on failure. */
  private async apply(change: Change): Promise<void> {
    const { store, runtime, ledger } = this.deps;
    const stopTimeout = this.deps.stopTimeoutSeconds ?? 10;
    switch (change.kind) {
      case 'create-dataset':
        await store.createDataset(change.datasetId, { maximumSize: change.maximumSize });
        return;
      case 'set-dataset-readonly':
        if (change.rollbackTo !== undefined) await store.rollbackToNewest(change.datasetId, change.rollbackTo);
        if (!change.readonly && change.mount && store.makeWritableMounted) return store.makeWritableMounted(change.datasetId);
        await store.setReadonly(change.datasetId, change.readonly);
        if (change.mount) await store.mount(change.datasetId);
        return;
      case 'set-dataset-size':
        await store.setMaximumSize(change.datasetId, change.maximumSize);
        return;
      case 'mount-dataset':
        await store.mount(change.datasetId);
        return;
      case 'unmount-dataset':
        await store.unmount(change.datasetId);
        return;
      case 'destroy-dataset':
        await store.destroyDataset(change.datasetId);
        return;
      case 'set-aside-diverged':
        if (store.setAside === undefined) throw new Error('this dataset store cannot set a copy aside');
        // Only a copy with writes after the promoted snapshot is set aside; one without rejoins in place.
        if (change.promoted !== undefined && store.rejoin !== undefined && (await store.rejoin(change.datasetId, change.generation, change.promoted))) return;
        await store.setAside(change.datasetId, change.generation);
        return;
      case 'clear-rejoined-mark':
        await store.clearRejoined?.(change.datasetId);
        return;
      case 'start-container':
        await runtime.createAndStart(await this.withFiles(change.spec));
        return;
      case 'stop-container':
        await runtime.stop(change.containerId, stopTimeout);
        return;
      case 'remove-container':
        await runtime.remove(change.containerId);
        if (change.gateId) await this.gates().remove(change.gateId);
        await this.deps.files?.release(change.name.replace(/^drover-/, ''));
        return;
      case 'prestart-container': {
        const gates = this.gates();
        const gate = await gates.prepare(change.gateId);
        for (const bind of change.spec.binds) await gates.prepareBindSource(bind.source);
        await runtime.createAndStart(await this.withFiles(change.spec), gate);
        return;
      }
      case 'open-container-gate':
        await this.gates().open(change.gateId);
        return;
      case 'restart-container':
        await runtime.restart(change.containerId, stopTimeout);
        if (change.reason !== 'never-started') ledger.recordRestart(change.containerId, change.consecutiveRestarts);
        return;
      case 'run-migration':
        this.migrationSteps().run(change.migration);
        return;
      case 'post-migration-update':
        await this.migrationSteps().post(change.migrationId, {
          node_uuid: this.deps.nodeUuid ?? '',
          generation: change.generation,
          phase: change.phase,
        });
        return;
      default:
        return assertNever(change);
    }
  }

  /** Writes the spec's files on this node and adds its secret environment (fetched now, never planned). */
  private async withFiles(spec: ContainerSpec): Promise<ContainerSpec> {
    if (spec.files === undefined && spec.secretEnv === undefined) return spec;
    if (!this.deps.files) throw new Error('files that travel with applications are not wired into this executor');
    const env = await this.deps.files.prepare(spec);
    return env.length === 0 ? spec : { ...spec, env: [...spec.env, ...env] };
  }

  private gates(): Gates {
    if (!this.deps.gates) throw new Error('container gates are not wired into this executor');
    return this.deps.gates;
  }

  private migrationSteps(): MigrationSteps {
    if (!this.deps.migrations || !this.deps.nodeUuid) throw new Error('migration steps are not wired into this executor');
    return this.deps.migrations;
  }
}

function afterOf(change: Change): string[] | undefined {
  const after = change.kind === 'start-container' || change.kind === 'open-container-gate' ? change.after : undefined;
  return after && after.length > 0 ? after : undefined;
}

function assertNever(value: never): never {
  throw new Error(`unknown change ${JSON.stringify(value)}`);
}

async function runLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  });
  await Promise.all(workers);
}

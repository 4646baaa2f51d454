/**
 * The agent's migration jobs, keyed by migration id: what the executor starts (a source
 * job, in the background) and posts (the target's `release` and `done`), and what discovery
 * reads back for the planner (`states()`, plain data). A job's stage change wakes the loop.
 *
 * The registry remembers how each job ended for as long as the desired configuration still
 * lists the migration, so a planner that reads a view older than the job's own last post
 * never restarts the application or the job (plan/migrations.ts).
 */
import type { AgentDesired, MigrationUpdate } from '#common/channel.ts';
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { Migration } from '#common/model.ts';
import type { MigrationJobState } from '../plan/types.ts';
import { postStep, type MigrationControl } from './migration-control.ts';
import type { PeerSource } from './peers.ts';
import { SourceJob, type JobOutcome, type SourceJobDeps } from './source-job.ts';

/** What the executor asks of the migration steps. */
export interface MigrationSteps {
  /** Starts the source job for `migration` unless one runs; returns at once. */
  run(migration: Migration): void;
  /** Posts the target's step; resolves once accepted (or already past it); throws otherwise. */
  post(migrationId: string, update: MigrationUpdate): Promise<void>;
}

interface Entry {
  job: SourceJob;
  controller: AbortController;
  outcome: JobOutcome | null;
  endedAt: number | null;
  done: Promise<void>;
}

export type MigrationJobsDeps = Omit<SourceJobDeps, 'nodeOf' | 'applicationOf' | 'phaseOf' | 'onStage'> & {
  peers: PeerSource;
  /** Called when a job's state changes. */
  onChange: () => void;
};

export class MigrationJobs implements MigrationSteps {
  private readonly entries = new Map<string, Entry>();
  private desired: AgentDesired | null = null;
  private stopping = false;

  constructor(private readonly deps: MigrationJobsDeps) {}

  /**
   * The newest desired configuration (each pass). A pre-copy job whose migration left the
   * view (finished or removed by the control service) is stopped; a job in cutover, or
   * handed off and settling, is never interrupted. Records of finished migrations are forgotten.
   */
  sync(desired: AgentDesired | null): void {
    if (desired === null) return;
    this.desired = desired;
    const listed = new Set(desired.migrations.map((m) => m.id));
    for (const [id, entry] of this.entries) {
      if (listed.has(id)) continue;
      // A handed-off job only settles its final sends (bounded): it ends by itself.
      if (entry.outcome === null && entry.job.stage !== 'cutover' && entry.job.stage !== 'handed-off') entry.controller.abort();
      if (entry.outcome !== null) this.entries.delete(id);
    }
  }

  states(): MigrationJobState[] {
    return [...this.entries].map(([migrationId, e]) => ({
      migrationId,
      stage: e.job.stage,
      outcome: e.outcome,
      endedAt: e.endedAt,
      error: e.job.error,
    }));
  }

  run(migration: Migration): void {
    if (this.stopping) throw new DroverError('DROVER_AGENT_STOPPING', 'the agent is stopping');
    const existing = this.entries.get(migration.id);
    if (existing && existing.outcome === null) return;
    const controller = new AbortController();
    const job = new SourceJob(
      migration,
      {
        ...this.deps,
        nodeOf: (uuid) => this.desired?.nodes.find((n) => n.uuid === uuid),
        applicationOf: (name) => this.desired?.applications.find((a) => a.name === name),
        phaseOf: (id) => this.desired?.migrations.find((m) => m.id === id)?.phase ?? null,
        onStage: () => this.deps.onChange(),
      },
      controller.signal,
    );
    const entry: Entry = { job, controller, outcome: null, endedAt: null, done: Promise.resolve() };
    entry.done = job.run().then((outcome) => {
      entry.outcome = outcome;
      entry.endedAt = this.deps.clock.now();
      this.deps.log.info({ corr: migration.id, migration: migration.id, outcome, stage: job.stage, error: job.error }, 'migration job ended');
      this.deps.onChange();
    });
    this.entries.set(migration.id, entry);
    this.deps.log.info({ corr: migration.id, migration: migration.id, to: migration.to, phase: migration.phase }, 'migration job started');
  }

  async post(migrationId: string, update: MigrationUpdate): Promise<void> {
    const posted = await postStep(this.deps.control, this.deps.clock, migrationId, update, { deadlineMs: 5_000 });
    if (posted.outcome === 'accepted' || posted.outcome === 'handed-off') return;
    throw new DroverError('DROVER_MIGRATION_STEP_REFUSED', `migration ${migrationId}: ${update.phase} not accepted (${posted.outcome}): ${posted.error?.message ?? ''}`, {
      retryable: posted.outcome === 'unanswered',
      detail: { migrationId, phase: update.phase, outcome: posted.outcome },
    });
  }

  /**
   * Agent shutdown: pre-copy jobs stop at once (the record stays in pre-copy and a restarted
   * agent resumes it); a job in cutover gets up to `graceMs` to finish or abort.
   */
  async stop(graceMs = 20_000): Promise<void> {
    this.stopping = true;
    const running = [...this.entries.values()].filter((e) => e.outcome === null);
    for (const e of running) if (e.job.stage !== 'cutover') e.controller.abort();
    await Promise.race([Promise.all(running.map((e) => e.done)), this.deps.clock.sleep(graceMs)]);
    await this.deps.peers.close();
  }
}


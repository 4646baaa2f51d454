/**
 * Migrations: a move of an application and/or datasets with their data
 * (convergence-agent/migration/DESIGN.md). The control service keeps the record and enforces
 * its rules; the agents drive it:
 *
 *   pending ─► pre-copy ─► cutover ─► handoff ─► release ─► done
 *                 └──────────┴─► failed      (the source is still primary)
 *
 * Every update must carry the record's own fencing `generation`, come from the node whose
 * turn it is, and follow the order above. At `handoff` the application's `node_uuid` and the
 * datasets' `primary` flip to the target in the same document change.
 */
import { randomUUID } from 'node:crypto';
import { DroverError } from '#common/errors.ts';
import type { MigrationUpdate } from '#common/channel.ts';
import type { Desired, Migration, MigrationPhase } from '#common/model.ts';
import { FINISHED_PHASES, indexOf, replaceAt } from './desired-index.ts';
import { findMigration } from './lookups.ts';

export interface MigrationStart {
  now: number;
  /** The version of the change that creates it: unique and increasing, the fencing generation. */
  version: number;
  newId?: () => string;
}

/** How many finished migrations the configuration keeps for the API and the CLI. */
export const FINISHED_KEPT = 100;

const NEXT: Record<MigrationPhase, readonly MigrationPhase[]> = {
  pending: ['pre-copy'],
  'pre-copy': ['cutover', 'failed'],
  cutover: ['handoff', 'failed'],
  handoff: ['release'],
  release: ['done'],
  done: [],
  failed: [],
};

/** Whose turn it is in each phase: the source drives up to handoff, the target after. */
const ACTOR: Record<MigrationPhase, 'from' | 'to'> = {
  pending: 'from',
  'pre-copy': 'from',
  cutover: 'from',
  handoff: 'from',
  release: 'to',
  done: 'to',
  failed: 'from',
};

export interface MoveRequest {
  application: string | null;
  datasetIds: readonly string[];
  from: string;
  to: string;
}

/**
 * Records a new migration in phase `pending`. When the source is no node that ever
 * registered (a dataset created for a node not yet up, or not yet placed), there is no data
 * to carry: the placement flips at once and no record is made.
 */
export function startMigration(desired: Desired, move: MoveRequest, start: MigrationStart): { desired: Desired; migration: Migration | null } {
  if (!indexOf(desired).nodes.has(move.from)) return { desired: flip(desired, move.application, move.datasetIds, move.to), migration: null };
  const migration: Migration = {
    id: (start.newId ?? randomUUID)(),
    application: move.application,
    dataset_ids: [...move.datasetIds],
    from: move.from,
    to: move.to,
    phase: 'pending',
    generation: nextGeneration(desired, start.version),
    round: 0,
    bytes_sent: 0,
    bytes_total: null,
    rate_bytes_per_second: null,
    started_at: start.now,
    updated_at: start.now,
    cutover_started_at: null,
    cutover_ms: null,
    error: null,
  };
  return { desired: { ...desired, migrations: pruned([...desired.migrations, migration]) }, migration };
}

/**
 * Applies an agent's step. Repeating the current phase reports progress; repeating a
 * finished phase is answered with the record unchanged (agents retry).
 * @throws DroverError DROVER_MIGRATION_NOT_FOUND (404), DROVER_MIGRATION_STALE_GENERATION,
 *   DROVER_MIGRATION_WRONG_NODE, DROVER_MIGRATION_BAD_TRANSITION (409).
 */
export function applyMigrationUpdate(desired: Desired, id: string, update: MigrationUpdate, now: number): { desired: Desired; migration: Migration } {
  const migration = findMigration(desired, id);
  if (update.generation !== migration.generation) {
    throw new DroverError(
      'DROVER_MIGRATION_STALE_GENERATION',
      `Migration ${id} has generation ${migration.generation}; an update for generation ${update.generation} is stale.`,
      { detail: { id, generation: migration.generation, got: update.generation } },
    );
  }
  if (FINISHED_PHASES.has(migration.phase) && update.phase === migration.phase) return { desired, migration };
  const same = update.phase === migration.phase;
  if (!same && !NEXT[migration.phase].includes(update.phase)) {
    throw new DroverError('DROVER_MIGRATION_BAD_TRANSITION', `Migration ${id} cannot go from ${migration.phase} to ${update.phase}.`, {
      detail: { id, phase: migration.phase, requested: update.phase },
    });
  }
  const actor = migration[ACTOR[update.phase]];
  if (update.node_uuid !== actor) {
    throw new DroverError('DROVER_MIGRATION_WRONG_NODE', `Only node ${actor} may report ${update.phase} for migration ${id}.`, {
      detail: { id, phase: update.phase, node_uuid: update.node_uuid, expected: actor },
    });
  }
  const next: Migration = {
    ...migration,
    phase: update.phase,
    round: update.round ?? migration.round,
    bytes_sent: update.bytes_sent ?? migration.bytes_sent,
    bytes_total: update.bytes_total === undefined ? migration.bytes_total : update.bytes_total,
    rate_bytes_per_second: update.rate_bytes_per_second === undefined ? migration.rate_bytes_per_second : update.rate_bytes_per_second,
    error: update.error === undefined ? migration.error : update.error,
    updated_at: now,
    cutover_started_at: !same && update.phase === 'cutover' ? now : migration.cutover_started_at,
    cutover_ms: !same && update.phase === 'release' && migration.cutover_started_at !== null ? now - migration.cutover_started_at : migration.cutover_ms,
  };
  const at = desired.migrations.indexOf(migration);
  let out: Desired = { ...desired, migrations: replaceAt(desired.migrations, at, next) };
  if (!same && update.phase === 'handoff') out = flip(out, next.application, next.dataset_ids, next.to);
  if (!same && FINISHED_PHASES.has(update.phase)) out = { ...out, migrations: pruned(out.migrations) };
  return { desired: out, migration: next };
}

/** Marks an unstarted migration failed (its application was deleted, say). */
export function abandonMigration(desired: Desired, migration: Migration, reason: string, now: number): Desired {
  const at = desired.migrations.indexOf(migration);
  if (at < 0) return desired;
  return { ...desired, migrations: replaceAt(desired.migrations, at, { ...migration, phase: 'failed', error: reason, updated_at: now }) };
}

/**
 * A fencing generation above every other one: the change's version, or one more than the
 * newest generation when one change starts several migrations.
 */
function nextGeneration(desired: Desired, version: number): number {
  let newest = 0;
  for (const m of desired.migrations) newest = Math.max(newest, m.generation);
  return Math.max(version, newest + 1);
}

/** The application runs on, and the datasets are primary on, `to`: one document change. */
function flip(desired: Desired, application: string | null, datasetIds: readonly string[], to: string): Desired {
  const index = indexOf(desired);
  let applications = desired.applications;
  if (application !== null) {
    const at = index.applicationPositions.get(application);
    if (at !== undefined) applications = replaceAt(applications, at, { ...applications[at]!, node_uuid: to });
  }
  let datasets = desired.datasets;
  for (const id of datasetIds) {
    const at = index.datasetPositions.get(id);
    if (at !== undefined) datasets = replaceAt(datasets, at, { ...datasets[at]!, primary: to });
  }
  return { ...desired, applications, datasets };
}

/** Keeps every unfinished migration and the newest FINISHED_KEPT finished ones. */
function pruned(migrations: Migration[]): Migration[] {
  const finished = migrations.filter((m) => FINISHED_PHASES.has(m.phase));
  if (finished.length <= FINISHED_KEPT) return migrations;
  const dropped = new Set(finished.sort((a, b) => a.updated_at - b.updated_at).slice(0, finished.length - FINISHED_KEPT));
  return migrations.filter((m) => !dropped.has(m));
}

/**
 * Migrations: a move of an application and/or datasets with their data
 * (convergence-agent/migration/DESIGN.md). The control service keeps the record and judges
 * every update by the protocol (common/migration-protocol.ts: the record's own fencing
 * `generation`, the node whose turn it is, the phase order); the agents drive it. At
 * `handoff` the application's `node_uuid` and the datasets' `primary` flip to the target in
 * the same document change.
 */
import { randomUUID } from 'node:crypto';
import { DroverError } from '#common/errors.ts';
import type { MigrationUpdate } from '#common/channel.ts';
import { isTerminal, judgeControlFailure, judgeUpdate, type ControlFailure } from '#common/migration-protocol.ts';
import type { Desired, Migration } from '#common/model.ts';
import { indexOf, replaceAt } from './desired-index.ts';
import { findMigration } from './lookups.ts';

export interface MigrationStart {
  now: number;
  /** The version of the change that creates it: unique and increasing, the fencing generation. */
  version: number;
  newId?: () => string;
  /**
   * Whether a node holds its lease: a move whose source (or target) is silent is refused at
   * once instead of waiting for it. Absent: every node counts as reporting.
   */
  nodeSilence?: (uuid: string) => { state: 'known' | 'unknown' | 'down'; host: string; silentMs: number | null };
}

/** How many finished migrations the configuration keeps for the API and the CLI. */
export const FINISHED_KEPT = 100;

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
 * @throws DroverError DROVER_NODE_SILENT (409) when the source or the target does not hold its lease.
 */
export function startMigration(desired: Desired, move: MoveRequest, start: MigrationStart): { desired: Desired; migration: Migration | null } {
  if (!indexOf(desired).nodes.has(move.from)) return { desired: flip(desired, move.application, move.datasetIds, move.to), migration: null };
  for (const [role, uuid] of [['source', move.from], ['target', move.to]] as const) {
    const node = start.nodeSilence?.(uuid);
    if (node === undefined || node.state === 'known') continue;
    const silent = node.silentMs === null ? 'has not reported since the control service started' : `has been silent for ${Math.round(node.silentMs / 1000)} s (${node.state})`;
    throw new DroverError('DROVER_NODE_SILENT', `Cannot move ${move.application ?? 'the datasets'}: the ${role} node ${node.host} ${silent}; its agent must report before a move can start.`, {
      detail: { node_uuid: uuid, role, state: node.state, silent_ms: node.silentMs },
    });
  }
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
  const verdict = judgeUpdate(migration, update, now);
  if (!verdict.ok) throw verdict.error;
  if (verdict.effect === 'unchanged') return { desired, migration };
  const next = verdict.migration;
  const at = desired.migrations.indexOf(migration);
  let out: Desired = { ...desired, migrations: replaceAt(desired.migrations, at, next) };
  if (verdict.effect === 'advanced' && next.phase === 'handoff') out = flip(out, next.application, next.dataset_ids, next.to);
  if (verdict.effect === 'advanced' && isTerminal(next.phase)) out = { ...out, migrations: pruned(out.migrations) };
  return { desired: out, migration: next };
}

/**
 * Marks an unstarted migration failed (its application was deleted, say): the control
 * service's own step, which callers make only when `mayAbandon` says so.
 */
export function abandonMigration(desired: Desired, migration: Migration, reason: string, now: number): Desired {
  const at = desired.migrations.indexOf(migration);
  if (at < 0) return desired;
  return { ...desired, migrations: replaceAt(desired.migrations, at, { ...migration, phase: 'failed', error: reason, updated_at: now }) };
}

/**
 * Whether deleting the application may fail its move: only before the move began
 * (`pending`). Later a job may be running on the source; the delete waits for the move.
 */
export function mayAbandon(migration: Migration): boolean {
  return migration.phase === 'pending';
}

/**
 * The control service's own `failed` (common/migration-protocol.ts `ControlFailure`): a
 * give-up before handoff changes only the record; a roll-back in handoff also flips the
 * application and its datasets back to the source, in the same document change.
 * @throws DroverError DROVER_MIGRATION_NOT_FOUND (404), DROVER_MIGRATION_BAD_TRANSITION (409,
 *   its message says why: handed off, already ended).
 */
export function failMigration(desired: Desired, id: string, kind: ControlFailure, reason: string, now: number): { desired: Desired; migration: Migration } {
  const migration = findMigration(desired, id);
  const verdict = judgeControlFailure(migration, kind, reason, now);
  if (!verdict.ok) throw verdict.error;
  const next = verdict.migration;
  let out: Desired = { ...desired, migrations: replaceAt(desired.migrations, desired.migrations.indexOf(migration), next) };
  if (kind === 'roll-back') out = flip(out, next.application, next.dataset_ids, next.from);
  return { desired: { ...out, migrations: pruned(out.migrations) }, migration: next };
}

/**
 * A fencing generation above every other one: the change's version, or one more than the
 * newest generation when one change starts several migrations.
 */
export function nextGeneration(desired: Desired, version: number): number {
  let newest = 0;
  for (const m of desired.migrations) newest = Math.max(newest, m.generation);
  return Math.max(version, newest + 1);
}

/** The application runs on, and the datasets are primary on, `to`: one document change. */
export function flip(desired: Desired, application: string | null, datasetIds: readonly string[], to: string): Desired {
  const index = indexOf(desired);
  let applications = desired.applications;
  if (application !== null) {
    const at = index.applicationPositions.get(application);
    if (at !== undefined) applications = replaceAt(applications, at, { ...applications[at]!, node_uuid: to });
  }
  let datasets = desired.datasets;
  for (const id of datasetIds) {
    const at = index.datasetPositions.get(id);
    // The new primary leaves `replicas` in the same write (the primary is never a replica,
    // invariants.ts): otherwise the handoff of a move to a replica breaks that rule and is refused.
    if (at !== undefined) datasets = replaceAt(datasets, at, { ...datasets[at]!, primary: to, replicas: datasets[at]!.replicas.filter((r) => r !== to) });
  }
  return { ...desired, applications, datasets };
}

/** Keeps every unfinished migration and the newest FINISHED_KEPT finished ones. */
export function pruned(migrations: Migration[]): Migration[] {
  const finished = migrations.filter((m) => isTerminal(m.phase));
  if (finished.length <= FINISHED_KEPT) return migrations;
  const dropped = new Set(finished.sort((a, b) => a.updated_at - b.updated_at).slice(0, finished.length - FINISHED_KEPT));
  return migrations.filter((m) => !dropped.has(m));
}

/**
 * A forced move (`drover move <app> <node> --force`, docs/DESIGN.md §19): the application's
 * node is silent, so there is no source to run a live move; the target's replica of each of
 * its datasets (docs/DESIGN.md §17) is promoted instead. Pure: the replicas' lag, what the
 * nodes hold and the time are inputs.
 *
 * The write is the handoff's (desired/migrations.ts): the application's `node_uuid` and its
 * datasets' `primary` flip to the target in one change, and a migration record is created
 * directly in phase `handoff` with a fencing generation above every earlier one, so the
 * target starts the application under that generation and posts `release`/`done` as after
 * any handoff, and the silent source — if it returns — finds itself neither primary nor in a
 * phase of its own. A move of the application still before handoff is given up first.
 *
 * XXX: this is the operator's half only. The failover engineer's promotion change (branch
 * wt-failover) is the one the lead keeps; this function is to be reconciled with it. The
 * handoff deadline (cluster/migration-watch.ts) may roll a forced record back to the silent
 * source if the target does not make the application ready in time; it should not.
 */
import { randomUUID } from 'node:crypto';
import { DroverError } from '#common/errors.ts';
import { HANDED_OFF_PHASES, isTerminal } from '#common/migration-protocol.ts';
import type { ReplicaAnswer } from '#common/api.ts';
import type { Desired, Migration } from '#common/model.ts';
import { indexOf, replaceAt } from './desired-index.ts';
import { assertNotLeasedAway } from './leases.ts';
import { findApplication, findNode } from './lookups.ts';
import { failMigration } from './migrations.ts';

/** A promoted copy older than this needs the operator to name the window (`--accept-data-loss`). */
export const DEFAULT_DATA_LOSS_THRESHOLD_SECONDS = 60;

export interface ForceMoveInput {
  application: string;
  to: string;
  now: number;
  /** The change's version: the fencing generation of the forced record. */
  version: number;
  /** The source's state and address (only unknown and down may be forced). */
  source: { state: 'known' | 'unknown' | 'down'; host: string; silentMs: number | null };
  /** The replicas of a dataset with their lag, as `GET /v1/drover/replication` shows them. */
  replicasOf: (datasetId: string) => readonly ReplicaAnswer[];
  hostOf: (node: string) => string;
  thresholdSeconds: number;
  /** The window the operator accepts losing, in seconds (parsed `--accept-data-loss`); null: none named. */
  acceptSeconds: number | null;
  newId?: () => string;
}

/**
 * @returns the configuration with the application and its datasets on `to`, and the forced record.
 * @throws DroverError DROVER_CONTAINER_NOT_FOUND, DROVER_NODE_NOT_FOUND (404); DROVER_FORCE_REFUSED
 *   (409: the source reports, no replica, the target holds no copy, no snapshot of it known
 *   there, the move handed off already); DROVER_DATA_LOSS_NOT_ACCEPTED (409: the newest copy
 *   is older than the threshold and the window named does not cover it); DROVER_LEASE_HELD,
 *   DROVER_MIGRATION_ACTIVE (409).
 */
export function forceMove(desired: Desired, input: ForceMoveInput): { desired: Desired; migration: Migration } {
  const app = findApplication(desired, input.application);
  const target = findNode(desired, input.to);
  const from = app.node_uuid;
  const refuse = (why: string, detail: Record<string, unknown> = {}) =>
    new DroverError('DROVER_FORCE_REFUSED', `Cannot force "${app.name}" onto ${target.host}: ${why}.`, { detail: { application: app.name, node_uuid: input.to, ...detail } });
  if (from === undefined) throw refuse('it is not placed on any node yet; there is nothing to force');
  if (from === input.to) throw refuse('it is on that node already');
  if (input.source.state === 'known') throw refuse(`its node ${input.source.host} is reporting; move it without --force (a live move loses nothing)`, { source_state: 'known' });

  let out = desired;
  const active = indexOf(desired).activeMigrations.byApplication.get(app.name);
  if (active) {
    if (HANDED_OFF_PHASES.has(active.phase)) throw refuse(`its move ${active.id} to node ${input.hostOf(active.to)} handed off already (${active.phase})`, { migration: active.id });
    out = failMigration(out, active.id, 'give-up', `superseded by a forced move to ${target.host}`, input.now).desired;
  }
  const datasetIds = app.volumes.map((v) => v.dataset_id);
  const index = indexOf(out);
  for (const id of datasetIds) {
    const other = index.activeMigrations.byDataset.get(id);
    if (other && !isTerminal(other.phase)) throw new DroverError('DROVER_MIGRATION_ACTIVE', `Dataset ${id} is moving (migration ${other.id}, ${other.phase}).`, { detail: { dataset_id: id, migration: other.id } });
  }
  assertNotLeasedAway(out, datasetIds, input.to, input.now);

  // How old the target's copy of each dataset is: the data window the promotion loses.
  let window = 0;
  for (const id of datasetIds) {
    const dataset = index.datasets.get(id)!;
    const name = dataset.metadata.name ? ` (${dataset.metadata.name})` : '';
    const replicas = input.replicasOf(id);
    if (dataset.replicas.length === 0 || replicas.length === 0) {
      throw refuse(`dataset ${id}${name} has no replica — its only copy is on the silent node ${input.source.host}; wait for the node, or set a replication policy before the next failure`, { dataset_id: id, reason: 'no-replica' });
    }
    const mine = replicas.find((r) => r.node === input.to);
    const elsewhere = replicas.map((r) => `${input.hostOf(r.node)}${r.lag_seconds === null ? ` (${r.state})` : ` (${formatWindow(r.lag_seconds)} old)`}`).join(', ');
    if (mine === undefined) throw refuse(`it holds no copy of dataset ${id}${name}; its replicas are on ${elsewhere}`, { dataset_id: id, reason: 'no-copy-on-target' });
    if (mine.lag_seconds === null || mine.newest_snapshot === null) {
      throw refuse(`no snapshot of dataset ${id}${name} is known to have reached it (replica ${mine.state}); its replicas: ${elsewhere}`, { dataset_id: id, reason: 'no-snapshot-on-target' });
    }
    window = Math.max(window, Math.floor(mine.lag_seconds));
  }
  if (window > input.thresholdSeconds && (input.acceptSeconds === null || input.acceptSeconds < window)) {
    const text = formatWindow(window);
    const named = input.acceptSeconds === null ? '' : ` (--accept-data-loss ${formatWindow(input.acceptSeconds)} does not cover it)`;
    throw new DroverError(
      'DROVER_DATA_LOSS_NOT_ACCEPTED',
      `The newest copy of "${app.name}"'s data on ${target.host} is ${text} old, more than the threshold of ${formatWindow(input.thresholdSeconds)}: forcing the move loses whatever ${input.source.host} wrote in those ${text}${named}. To accept that, repeat the window: --accept-data-loss ${text}.`,
      { detail: { application: app.name, node_uuid: input.to, window_seconds: window, window: text, threshold_seconds: input.thresholdSeconds } },
    );
  }

  const migration: Migration = {
    id: (input.newId ?? randomUUID)(),
    application: app.name,
    dataset_ids: datasetIds,
    from,
    to: input.to,
    phase: 'handoff',
    generation: Math.max(input.version, ...out.migrations.map((m) => m.generation + 1)),
    round: 0,
    bytes_sent: 0,
    bytes_total: null,
    rate_bytes_per_second: null,
    started_at: input.now,
    updated_at: input.now,
    cutover_started_at: null,
    cutover_ms: null,
    error: null,
    forced: { data_loss_seconds: window },
  };
  const flipped = promote(out, app.name, datasetIds, input.to);
  return { desired: { ...flipped, migrations: [...flipped.migrations, migration] }, migration };
}

/** The handoff's flip: the application on `to`, its datasets primary there, `to` no longer their replica. */
function promote(desired: Desired, application: string, datasetIds: readonly string[], to: string): Desired {
  const index = indexOf(desired);
  const at = index.applicationPositions.get(application)!;
  const applications = replaceAt(desired.applications, at, { ...desired.applications[at]!, node_uuid: to });
  let datasets = desired.datasets;
  for (const id of datasetIds) {
    const pos = index.datasetPositions.get(id);
    if (pos === undefined) continue;
    const d = datasets[pos]!;
    datasets = replaceAt(datasets, pos, { ...d, primary: to, replicas: d.replicas.filter((r) => r !== to) });
  }
  return { ...desired, applications, datasets };
}

/** `5m12s`, `45s`, `1h0m3s`: the form `--accept-data-loss` reads back (common/units.ts parseDuration). */
export function formatWindow(seconds: number): string {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${h}h${m}m${rest}s`;
  if (m > 0) return `${m}m${rest}s`;
  return `${rest}s`;
}

/**
 * A forced move (`drover move <app> <node> --force`, docs/DESIGN.md §19): the application's
 * node is silent, so there is no source to run a live move; the target's replica of each of
 * its datasets (docs/DESIGN.md §17) is promoted instead. Pure: what the nodes reported
 * holding, the source's silence and the time are inputs.
 *
 * This file is the operator's half: the refusals (the source reports, no replica, no copy on
 * the target, a data window older than the threshold and not named). The change itself is
 * the failover engineer's `failover` (cluster/failover.ts, docs/DESIGN.md §18): one write
 * flips the application's `node_uuid` and its datasets' `primary` to the target, drops the
 * target from `replicas`, and adds a `done` record with `failover` details and a fencing
 * generation above every earlier one. A move of the application still before handoff is
 * given up first ("superseded by a forced move").
 */
import { DroverError } from '#common/errors.ts';
import { HANDED_OFF_PHASES, isTerminal } from '#common/migration-protocol.ts';
import type { Desired, Migration } from '#common/model.ts';
import { droverSnapshotTime, failover, type FailoverTarget, type SnapshotsOn } from '../cluster/failover.ts';
import { indexOf } from './desired-index.ts';
import { assertNotLeasedAway } from './leases.ts';
import { findApplication, findNode } from './lookups.ts';
import { failMigration } from './migrations.ts';

/** A promoted copy older than this needs the operator to name the window (`--accept-data-loss`). */
export const DEFAULT_DATA_LOSS_THRESHOLD_SECONDS = 60;

export interface ForceMoveInput {
  application: string;
  to: string;
  now: number;
  /** The change's version: the fencing generation of the record is at least this. */
  version: number;
  /** The source's state and address (only unknown and down may be forced). */
  source: { state: 'known' | 'unknown' | 'down'; host: string; silentMs: number | null };
  /** What each node reported holding of a dataset (its snapshots). */
  snapshotsOn: SnapshotsOn;
  hostOf: (node: string) => string;
  thresholdSeconds: number;
  /** The window the operator accepts losing, in seconds (parsed `--accept-data-loss`); null: none named. */
  acceptSeconds: number | null;
  newId?: () => string;
}

/**
 * @returns the configuration with the application and its datasets on `to`, and the failover record.
 * @throws DroverError DROVER_CONTAINER_NOT_FOUND, DROVER_NODE_NOT_FOUND (404); DROVER_FORCE_REFUSED
 *   (409: the source reports, no replica, the target holds no copy, the move handed off
 *   already); DROVER_DATA_LOSS_NOT_ACCEPTED (409: the newest copy on the target is older than
 *   the threshold and the window named does not cover it); DROVER_LEASE_HELD, DROVER_MIGRATION_ACTIVE (409).
 */
export function forceMove(desired: Desired, input: ForceMoveInput): { desired: Desired; migration: Migration } {
  const app = findApplication(desired, input.application);
  const target = findNode(desired, input.to);
  const from = app.node_uuid;
  const refuse = (why: string, detail: Record<string, unknown> = {}) =>
    new DroverError('DROVER_FORCE_REFUSED', `Cannot force "${app.name}" onto ${target.host}: ${why}.`, { detail: { application: app.name, node_uuid: input.to, ...detail } });
  if (from === undefined) throw refuse('it is not placed on any node yet; there is nothing to force');
  if (from === input.to) throw refuse('it is on that node already');
  if (input.source.state === 'known') throw refuse(`its node ${input.source.host} is reporting; move it without --force (a live move loses nothing)`, { reason: 'source-reporting' });

  let out = desired;
  const active = indexOf(desired).activeMigrations.byApplication.get(app.name);
  if (active) {
    if (HANDED_OFF_PHASES.has(active.phase)) throw refuse(`its move ${active.id} to node ${input.hostOf(active.to)} handed off already (${active.phase})`, { migration: active.id });
    out = failMigration(out, active.id, 'give-up', `superseded by a forced move to ${target.host}`, input.now).desired;
  }
  const datasetIds = [...new Set(app.volumes.map((v) => v.dataset_id))];
  const index = indexOf(out);
  for (const id of datasetIds) {
    const other = index.activeMigrations.byDataset.get(id);
    if (other && !isTerminal(other.phase)) throw new DroverError('DROVER_MIGRATION_ACTIVE', `Dataset ${id} is moving (migration ${other.id}, ${other.phase}).`, { detail: { dataset_id: id, migration: other.id } });
  }
  assertNotLeasedAway(out, datasetIds, input.to, input.now);

  // The newest drover snapshot the target holds of each dataset: what the application restarts from.
  const newestOn = (node: string, id: string): { name: string; at: number } | null => {
    let best: { name: string; at: number } | null = null;
    for (const s of input.snapshotsOn(node, id) ?? []) {
      const at = droverSnapshotTime(s.name);
      if (at !== null && (best === null || at > best.at)) best = { name: s.name, at };
    }
    return best;
  };
  const snapshots: FailoverTarget['snapshots'] = [];
  let oldest: number | null = null;
  for (const id of datasetIds) {
    const dataset = index.datasets.get(id)!;
    const name = dataset.metadata.name ? ` (${dataset.metadata.name})` : '';
    if ((dataset.replication?.replicas ?? 0) === 0 && dataset.replicas.length === 0) {
      throw refuse(`dataset ${id}${name} has no replica — its only copy is on the silent node ${input.source.host}; wait for the node, or set a replication policy before the next failure`, { dataset_id: id, reason: 'no-replica' });
    }
    const newest = newestOn(input.to, id);
    if (newest === null) {
      const copies = dataset.replicas
        .map((r) => ({ r, s: newestOn(r, id) }))
        .filter((c) => c.s !== null)
        .map((c) => `${input.hostOf(c.r)} (${formatWindow(Math.max(0, (input.now - c.s!.at) / 1000))} old)`);
      throw refuse(`it holds no copy of dataset ${id}${name}; ${copies.length > 0 ? `copies are on ${copies.join(', ')}` : 'no replica reported a copy yet'}`, { dataset_id: id, reason: 'no-copy-on-target' });
    }
    snapshots.push({ dataset_id: id, snapshot: newest.name, created_at: newest.at });
    oldest = oldest === null ? newest.at : Math.min(oldest, newest.at);
  }
  const window = oldest === null ? 0 : Math.max(0, Math.floor((input.now - oldest) / 1000));
  if (window > input.thresholdSeconds && (input.acceptSeconds === null || input.acceptSeconds < window)) {
    const text = formatWindow(window);
    const named = input.acceptSeconds === null ? '' : ` (--accept-data-loss ${formatWindow(input.acceptSeconds)} does not cover it)`;
    throw new DroverError(
      'DROVER_DATA_LOSS_NOT_ACCEPTED',
      `The newest copy of "${app.name}"'s data on ${target.host} is ${text} old, more than the threshold of ${formatWindow(input.thresholdSeconds)}: forcing the move loses whatever ${input.source.host} wrote in those ${text}${named}. To accept that, repeat the window: --accept-data-loss ${text}.`,
      { detail: { application: app.name, node_uuid: input.to, window_seconds: window, window: text, threshold_seconds: input.thresholdSeconds } },
    );
  }
  const done = failover(
    out,
    { failedNode: from, application: app.name, datasetIds },
    { node: input.to, snapshots, oldestNewestAt: oldest },
    { now: input.now, version: input.version, failedSilentMs: input.source.silentMs ?? 0, ...(input.newId ? { newId: input.newId } : {}) },
  );
  return { desired: done.desired, migration: done.record };
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

/**
 * Leases (Flocker's `/v1/configuration/leases`): while a node holds a lease on a dataset,
 * nothing moves the dataset away from that node or deletes it. drover enforces this in the
 * API (Flocker left it to the agents; docs/DESIGN.md §3).
 *
 * Stored with an absolute expiry (`expires_at`, ms since the epoch); the wire form is
 * Flocker's `expires`, seconds remaining (api/wire.ts translates).
 */
import { DroverError } from '#common/errors.ts';
import type { Desired, Lease } from '#common/model.ts';
import { indexOf } from './desired-index.ts';

export function isLive(lease: Lease, now: number): boolean {
  return lease.expires_at === null || lease.expires_at > now;
}

/** The live lease on a dataset, if any. */
export function liveLease(desired: Desired, datasetId: string, now: number): Lease | null {
  const lease = indexOf(desired).leases.get(datasetId);
  return lease && isLive(lease, now) ? lease : null;
}

/**
 * Refuses (409 DROVER_LEASE_HELD, naming the lease) when one of the datasets is leased to a
 * node other than `target`; `target` null means "going nowhere" (a delete).
 */
export function assertNotLeasedAway(desired: Desired, datasetIds: readonly string[], target: string | null, now: number): void {
  for (const datasetId of datasetIds) {
    const lease = liveLease(desired, datasetId, now);
    if (!lease || lease.node_uuid === target) continue;
    const until = lease.expires_at === null ? 'without expiry' : `for ${Math.ceil((lease.expires_at - now) / 1000)} s more`;
    throw new DroverError('DROVER_LEASE_HELD', `Dataset ${datasetId} is leased to node ${lease.node_uuid} ${until}; release the lease first.`, {
      detail: { dataset_id: datasetId, node_uuid: lease.node_uuid, expires_at: lease.expires_at },
    });
  }
}

export interface AcquireLease {
  dataset_id: string;
  node_uuid: string;
  /** Seconds from now; null never expires. */
  expires: number | null;
}

/**
 * Takes or renews a lease. `created` tells a new lease (201) from a renewal (200).
 *
 * As in Flocker, the dataset need not be in the configuration (yet): the lease is stored
 * and applies to a dataset created later with that id (a volume plugin may lease before it
 * creates). Nothing reads such a lease until then: an agent's view carries the leases of
 * the datasets it holds, and the rules only keep one lease per dataset. A dataset that is
 * in the configuration but deleted is still refused (405).
 */
export function acquireLease(desired: Desired, input: AcquireLease, now: number): { desired: Desired; lease: Lease; created: boolean } {
  const dataset = indexOf(desired).datasets.get(input.dataset_id);
  if (dataset?.deleted) throw new DroverError('DROVER_DATASET_DELETED', 'The dataset has been deleted.', { detail: { dataset_id: dataset.dataset_id } });
  const held = liveLease(desired, input.dataset_id, now);
  if (held && held.node_uuid !== input.node_uuid) {
    throw new DroverError('DROVER_LEASE_HELD', `Lease already held by node ${held.node_uuid}.`, {
      detail: { dataset_id: input.dataset_id, node_uuid: held.node_uuid, expires_at: held.expires_at },
    });
  }
  const moving = indexOf(desired).activeMigrations.byDataset.get(input.dataset_id);
  if (moving && moving.to !== input.node_uuid) {
    throw new DroverError('DROVER_MIGRATION_ACTIVE', `The dataset is moving to node ${moving.to} (migration ${moving.id}, ${moving.phase}).`, {
      detail: { dataset_id: input.dataset_id, migration: moving.id },
    });
  }
  const lease: Lease = {
    dataset_id: input.dataset_id,
    node_uuid: input.node_uuid,
    expires_at: input.expires === null ? null : now + input.expires * 1000,
  };
  const others = desired.leases.filter((l) => l.dataset_id !== input.dataset_id && isLive(l, now));
  return { desired: { ...desired, leases: [...others, lease] }, lease, created: held === null };
}

export function releaseLease(desired: Desired, datasetId: string, now: number): { desired: Desired; lease: Lease } {
  const lease = liveLease(desired, datasetId, now);
  if (!lease) throw new DroverError('DROVER_LEASE_NOT_FOUND', 'Lease not found.', { detail: { dataset_id: datasetId } });
  return { desired: { ...desired, leases: desired.leases.filter((l) => l.dataset_id !== datasetId && isLive(l, now)) }, lease };
}

/**
 * drover's ZFS namespace (docs/DESIGN.md §6). Every name is checked here before it reaches a
 * command line, local or remote; zfs-fuse accepts names OpenZFS rejects (`@bad name`), so
 * the OpenZFS charset is enforced by us, not by zfs. Pure.
 *
 *   dataset   <pool>/drover/<dataset_id>        dataset_id: lower-case UUID
 *   snapshot  <pool>/drover/<dataset_id>@drover-…
 *   hold tag  drover-…
 */
import { DroverError } from '#common/errors.ts';

export const DROVER_ROOT = 'drover';
export const DROVER_PREFIX = 'drover-';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// OpenZFS component charset: alphanumerics plus `_ . : -`; no space, no `+`, no `%`.
const POOL = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;
const RESERVED_POOL = /^(mirror|raidz|draid|spare|log|cache|special|c[0-9])/;
const OWNED_SUFFIX = /^[A-Za-z0-9_.:-]{1,200}$/;

function invalid(kind: string, value: unknown, why: string): DroverError {
  return new DroverError('DROVER_ZFS_INVALID_NAME', `invalid ${kind} ${JSON.stringify(value)}: ${why}`, {
    detail: { kind, value: typeof value === 'string' ? value.slice(0, 300) : String(value) },
  });
}

/** Throws DROVER_ZFS_INVALID_NAME unless `pool` is a plausible OpenZFS pool name. */
export function assertPoolName(pool: unknown): asserts pool is string {
  if (typeof pool !== 'string' || !POOL.test(pool)) {
    throw invalid('pool', pool, 'pools are a letter then letters, digits, "_", ".", ":" or "-"');
  }
  if (RESERVED_POOL.test(pool)) throw invalid('pool', pool, 'the name is reserved by ZFS');
}

/** Throws DROVER_ZFS_INVALID_NAME unless `datasetId` is a lower-case UUID. */
export function assertDatasetId(datasetId: unknown): asserts datasetId is string {
  if (typeof datasetId !== 'string' || !UUID.test(datasetId)) {
    throw invalid('dataset id', datasetId, 'dataset ids are lower-case UUIDs');
  }
}

function assertOwned(kind: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || !value.startsWith(DROVER_PREFIX) || !OWNED_SUFFIX.test(value.slice(DROVER_PREFIX.length))) {
    throw invalid(kind, value, `drover's ${kind}s are "${DROVER_PREFIX}" then letters, digits, "_", ".", ":" or "-"`);
  }
}

/** Throws DROVER_ZFS_INVALID_NAME unless `snapshot` (the part after `@`) is drover's. */
export function assertSnapshotName(snapshot: unknown): asserts snapshot is string {
  assertOwned('snapshot', snapshot);
}

/** Throws DROVER_ZFS_INVALID_NAME unless `tag` is a drover hold tag. */
export function assertHoldTag(tag: unknown): asserts tag is string {
  assertOwned('hold tag', tag);
}

/** True when `snapshot` is a valid drover snapshot name; never throws. */
export function isDroverSnapshotName(snapshot: string): boolean {
  return snapshot.startsWith(DROVER_PREFIX) && OWNED_SUFFIX.test(snapshot.slice(DROVER_PREFIX.length));
}

/** `<pool>/drover`, validated. */
export function rootPath(pool: string): string {
  assertPoolName(pool);
  return `${pool}/${DROVER_ROOT}`;
}

/** `<pool>/drover-diverged`: copies a node kept after a failover took their dataset elsewhere (docs/DESIGN.md §18). */
export function divergedRootPath(pool: string): string {
  assertPoolName(pool);
  return `${pool}/drover-diverged`;
}

/** `<pool>/drover-diverged/<dataset_id>-g<generation>`, validated. */
export function divergedPath(pool: string, datasetId: string, generation: number): string {
  assertDatasetId(datasetId);
  if (!Number.isSafeInteger(generation) || generation < 0) throw new DroverError('DROVER_ZFS_INVALID_NAME', `invalid generation ${generation}`);
  return `${divergedRootPath(pool)}/${datasetId}-g${generation}`;
}

/** The dataset id and generation of a name under `<pool>/drover-diverged/`; null for anything else. Never throws. */
export function parseDivergedPath(pool: string, name: string): { datasetId: string; generation: number } | null {
  const prefix = `${pool}/drover-diverged/`;
  if (!name.startsWith(prefix)) return null;
  const m = /^(.+)-g(\d{1,15})$/.exec(name.slice(prefix.length));
  if (!m || !UUID.test(m[1]!)) return null;
  return { datasetId: m[1]!, generation: Number(m[2]) };
}

/** `<pool>/drover/<dataset_id>`, validated. */
export function datasetPath(pool: string, datasetId: string): string {
  assertDatasetId(datasetId);
  return `${rootPath(pool)}/${datasetId}`;
}

/** `<pool>/drover/<dataset_id>@<snapshot>`, validated. */
export function snapshotPath(pool: string, datasetId: string, snapshot: string): string {
  assertSnapshotName(snapshot);
  return `${datasetPath(pool, datasetId)}@${snapshot}`;
}

/**
 * The dataset id of a full name under `<pool>/drover/`, or null for anything else
 * (the root itself, deeper children, snapshots, foreign datasets). Never throws.
 */
export function datasetIdOf(pool: string, name: string): string | null {
  const prefix = `${pool}/${DROVER_ROOT}/`;
  if (!name.startsWith(prefix)) return null;
  const rest = name.slice(prefix.length);
  return UUID.test(rest) ? rest : null;
}

/**
 * Splits `<pool>/drover/<id>@<snapshot>` into its parts when both are drover's; null
 * otherwise. Never throws.
 */
export function parseSnapshotPath(pool: string, name: string): { datasetId: string; snapshot: string } | null {
  const at = name.indexOf('@');
  if (at < 0) return null;
  const datasetId = datasetIdOf(pool, name.slice(0, at));
  const snapshot = name.slice(at + 1);
  if (datasetId === null || !isDroverSnapshotName(snapshot)) return null;
  return { datasetId, snapshot };
}

/**
 * The hold tags drover uses: a fixed vocabulary, because zfs-fuse cannot list hold tags
 * (only count them), and destroying a dataset must be able to release every drover hold.
 * `step`: on the base and the new snapshot while a replication step runs (both sides).
 * `base`: on the newest snapshot both sides share, so pruning never removes the next base.
 */
export const HOLD_TAGS = { step: 'drover-step', base: 'drover-base' } as const;

/** A pair of hold tags a step uses on one side: `base` kept after the step, `step` while it runs. */
export interface HoldTagPair {
  base: string;
  step: string;
}

/**
 * The tags a primary holds on its own side for one replica (continuous replication,
 * replication/DESIGN.md "Holds"): `drover-base-<first 8 hex of the replica's uuid>` and
 * `drover-step-<…>`, so each replica's newest common snapshot is protected separately.
 * zfs-fuse cannot list tags, so every per-peer tag placed on a dataset's snapshots is
 * recorded in the dataset's `drover:hold-tags` property first (HOLD_TAGS_PROPERTY); the
 * destroy path releases the fixed tags and every recorded one. Pure.
 */
export function replicaHoldTags(peerId: string): HoldTagPair {
  const short = peerId.replace(/-/g, '').slice(0, 8).toLowerCase();
  if (!/^[0-9a-f]{8}$/.test(short)) throw invalid('peer id', peerId, 'peer ids are node uuids');
  return { base: `${HOLD_TAGS.base}-${short}`, step: `${HOLD_TAGS.step}-${short}` };
}

/** The dataset's user property that lists the per-peer hold tags placed on its snapshots (comma-separated). */
export const HOLD_TAGS_PROPERTY = 'drover:hold-tags';

/**
 * Every `zfs` command line drover runs, built from fixed templates and validated names, plus
 * the parsers of their output. Pure. zfs.ts runs these locally; the ssh transport runs the
 * same argv on a peer, so the remote command line is exactly as safe as the local one.
 *
 * Numbers come from `zfs get -Hp` (zfs-fuse has no `zfs list -p`; `zfs list -o guid` prints
 * `9.58E`); guids stay decimal strings.
 */
import { DroverError } from '#common/errors.ts';
import { datasetIdOf, datasetPath, divergedPath, divergedRootPath, isDroverSnapshotName, rootPath, snapshotPath, assertHoldTag, HOLD_TAGS_PROPERTY } from './names.ts';
import type { ZfsDatasetInfo, ZfsSnapshotInfo } from './types.ts';

export type Argv = readonly string[];

/** drover's own mirror of `readonly`: zfs-fuse reports `off temporary` on a mounted read-only dataset. */
export const READONLY_PROPERTY = 'drover:readonly';
/** Set on a failed node's copy that held nothing after the promoted snapshot: its value is the failover's generation. */
export const REJOINED_PROPERTY = 'drover:rejoined';

export const DATASET_PROPERTIES = ['type', 'mountpoint', 'mounted', 'readonly', READONLY_PROPERTY, 'refquota', 'used', 'referenced'] as const;
export const SNAPSHOT_PROPERTIES = ['guid', 'createtxg', 'userrefs'] as const;

export const argv = {
  getDatasets: (pool: string): Argv => ['get', '-Hp', '-d', '1', '-o', 'name,property,value', DATASET_PROPERTIES.join(','), rootPath(pool)],
  getDataset: (pool: string, id: string): Argv => ['get', '-Hp', '-o', 'name,property,value', DATASET_PROPERTIES.join(','), datasetPath(pool, id)],
  /** Every drover dataset and its snapshots in one command (snapshots are one level below their dataset). */
  getAll: (pool: string): Argv => ['get', '-Hp', '-d', '2', '-o', 'name,property,value', [...DATASET_PROPERTIES, ...SNAPSHOT_PROPERTIES, REJOINED_PROPERTY].join(','), rootPath(pool)],
  /** A dataset and its snapshots in one command (a replication step's look at its replica). */
  getDatasetState: (pool: string, id: string): Argv => ['get', '-Hp', '-d', '1', '-o', 'name,property,value', [...DATASET_PROPERTIES, ...SNAPSHOT_PROPERTIES].join(','), datasetPath(pool, id)],
  getSnapshots: (pool: string, id: string): Argv => ['get', '-Hp', '-d', '1', '-o', 'name,property,value', SNAPSHOT_PROPERTIES.join(','), datasetPath(pool, id)],
  poolName: (pool: string): Argv => ['get', '-H', '-o', 'value', 'name', rootPath(pool).split('/')[0]!],
  createRoot: (pool: string): Argv => ['create', rootPath(pool)],
  create: (pool: string, id: string, refquota: number | null, mountpoint: string | null): Argv => [
    'create',
    '-o', `refquota=${quota(refquota)}`,
    ...(mountpoint === null ? [] : ['-o', `mountpoint=${mountpoint}`]),
    datasetPath(pool, id),
  ],
  destroy: (pool: string, id: string): Argv => ['destroy', '-r', datasetPath(pool, id)],
  set: (pool: string, id: string, property: 'readonly' | typeof READONLY_PROPERTY | 'refquota' | 'mountpoint', value: string): Argv => {
    if (!/^[A-Za-z0-9_./:-]{1,1000}$/.test(value) || value.startsWith('-')) {
      throw new DroverError('DROVER_ZFS_INVALID_NAME', `invalid value for ${property}: ${JSON.stringify(value)}`);
    }
    return ['set', `${property}=${value}`, datasetPath(pool, id)];
  },
  /** `zfs get -Hp -o value <property> <dataset>`: one property's raw value. */
  getProperty: (pool: string, id: string, property: 'written' | typeof HOLD_TAGS_PROPERTY): Argv => ['get', '-Hp', '-o', 'value', property, datasetPath(pool, id)],
  /** Records the per-peer hold tags placed on a dataset's snapshots (names.ts HOLD_TAGS_PROPERTY). */
  setHoldTags: (pool: string, id: string, tags: readonly string[]): Argv => {
    for (const tag of tags) assertHoldTag(tag);
    return ['set', `${HOLD_TAGS_PROPERTY}=${tags.length > 0 ? tags.join(',') : '-'}`, datasetPath(pool, id)];
  },
  mount: (pool: string, id: string): Argv => ['mount', datasetPath(pool, id)],
  /** Mounted writable whatever `readonly` says at that instant (it is being set off beside it: makeWritableMounted). */
  mountWritable: (pool: string, id: string): Argv => ['mount', '-o', 'rw', datasetPath(pool, id)],
  unmount: (pool: string, id: string, force: boolean): Argv => ['unmount', ...(force ? ['-f'] : []), datasetPath(pool, id)],
  snapshot: (pool: string, id: string, snap: string): Argv => ['snapshot', snapshotPath(pool, id, snap)],
  destroySnapshot: (pool: string, id: string, snap: string): Argv => ['destroy', snapshotPath(pool, id, snap)],
  hold: (pool: string, id: string, snap: string, tag: string): Argv => {
    assertHoldTag(tag);
    return ['hold', tag, snapshotPath(pool, id, snap)];
  },
  /** One `zfs release` of `tag` from several snapshots (zfs-fuse and OpenZFS take a list; each is released or reported on its own). */
  releaseMany: (pool: string, id: string, snaps: readonly string[], tag: string): Argv => {
    assertHoldTag(tag);
    return ['release', tag, ...snaps.map((snap) => snapshotPath(pool, id, snap))];
  },
  release: (pool: string, id: string, snap: string, tag: string): Argv => {
    assertHoldTag(tag);
    return ['release', tag, snapshotPath(pool, id, snap)];
  },
  /** `-r` destroys the later snapshots: only ever used on a drover-owned, non-primary replica. */
  rollback: (pool: string, id: string, snap: string): Argv => ['rollback', '-r', snapshotPath(pool, id, snap)],
  /** Without -r: zfs refuses unless `snap` is the newest snapshot, so no snapshot is destroyed. */
  rollbackToNewest: (pool: string, id: string, snap: string): Argv => ['rollback', snapshotPath(pool, id, snap)],
  /** `-I` (intermediates): every snapshot between base and snap travels too, not only snap. */
  send: (pool: string, id: string, snap: string, base: string | null, flags: readonly SendFlag[] = [], intermediates = false): Argv => [
    'send',
    ...flags.map((f) => `-${f}`),
    ...(base === null ? [] : [intermediates ? '-I' : '-i', snapshotPath(pool, id, base)]),
    snapshotPath(pool, id, snap),
  ],
  /** `<pool>/drover-diverged`, never mounted (docs/DESIGN.md §18: copies kept after a failover). */
  createDivergedRoot: (pool: string): Argv => ['create', '-o', 'mountpoint=none', divergedRootPath(pool)],
  /** Moves a dataset, its snapshots with it, aside: `<pool>/drover/<id>` → `<pool>/drover-diverged/<id>-g<generation>`. */
  setAside: (pool: string, id: string, generation: number): Argv => ['rename', datasetPath(pool, id), divergedPath(pool, id, generation)],
  /** A kept copy is never mounted (its mountpoint would be the new replica's) and stays read-only. */
  settleDiverged: (pool: string, id: string, generation: number, property: 'mountpoint' | 'readonly', value: 'none' | 'on'): Argv => ['set', `${property}=${value}`, divergedPath(pool, id, generation)],
  /** The failover generation whose promoted snapshot each copy here was rolled back to (docs/DESIGN.md §18 "A node that comes back"). */
  getRejoined: (pool: string): Argv => ['get', '-Hp', '-d', '1', '-o', 'name,property,value', REJOINED_PROPERTY, rootPath(pool)],
  setRejoined: (pool: string, id: string, generation: number): Argv => ['set', `${REJOINED_PROPERTY}=${generation}`, datasetPath(pool, id)],
  /** The copy is an ordinary replica again: the mark goes (`zfs inherit` of a user property removes it). */
  clearRejoined: (pool: string, id: string): Argv => ['inherit', REJOINED_PROPERTY, datasetPath(pool, id)],
  /**
   * A rejoin's replica back in place: a clone of the kept copy's promoted snapshot, read-only,
   * at drover's mountpoint; `promote` then hands it every snapshot up to that one.
   */
  cloneBack: (pool: string, id: string, generation: number, promoted: string, mountpoint: string | null): Argv => [
    'clone',
    '-o', 'readonly=on',
    ...(mountpoint === null ? [] : ['-o', `mountpoint=${mountpoint}`]),
    `${divergedPath(pool, id, generation)}@${promoted}`,
    datasetPath(pool, id),
  ],
  promote: (pool: string, id: string): Argv => ['promote', datasetPath(pool, id)],
  /** The kept copies and their space (`used`). */
  getDiverged: (pool: string): Argv => ['get', '-Hp', '-d', '1', '-o', 'name,property,value', 'used', divergedRootPath(pool)],
  /** Always `-u`: a replica is never mounted by a receive (it also avoids zfs-fuse's EBUSY). */
  receive: (pool: string, id: string, resumable: boolean): Argv => ['receive', '-u', ...(resumable ? ['-s'] : []), datasetPath(pool, id)],
};

export type SendFlag = 'c' | 'L' | 'e' | 'w';

function quota(bytes: number | null): string {
  if (bytes === null) return 'none';
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new DroverError('DROVER_ZFS_INVALID_SIZE', `maximum size must be a positive whole number of bytes, got ${bytes}`);
  }
  return String(bytes);
}
export { quota as quotaValue };

/** Parses `zfs get -H -o name,property,value` lines into name → property → value. */
export function parseGet(stdout: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const [name, property, ...rest] = line.split('\t');
    if (name === undefined || property === undefined || rest.length === 0) continue;
    let props = out.get(name);
    if (!props) out.set(name, (props = new Map()));
    props.set(property, rest.join('\t'));
  }
  return out;
}

function integer(value: string | undefined, field: string, name: string): number {
  const n = Number(value);
  if (value === undefined || !Number.isSafeInteger(n)) {
    throw new DroverError('DROVER_ZFS_BAD_OUTPUT', `unexpected ${field} ${JSON.stringify(value)} for ${name}`);
  }
  return n;
}

/** The drover datasets in a `getDatasets`/`getDataset` answer, sorted by id. */
export function parseDatasets(pool: string, stdout: string): ZfsDatasetInfo[] {
  const out: ZfsDatasetInfo[] = [];
  for (const [name, props] of parseGet(stdout)) {
    const datasetId = datasetIdOf(pool, name);
    if (datasetId === null || props.get('type') !== 'filesystem') continue;
    const mountpoint = props.get('mountpoint');
    const mirror = props.get(READONLY_PROPERTY);
    const refquota = integer(props.get('refquota'), 'refquota', name);
    out.push({
      datasetId,
      name,
      mountpoint: mountpoint === undefined || mountpoint === 'none' || mountpoint === 'legacy' || mountpoint === '-' ? null : mountpoint,
      mounted: props.get('mounted') === 'yes',
      readonly: mirror === 'on' || mirror === 'off' ? mirror === 'on' : props.get('readonly') === 'on',
      refquota: refquota === 0 ? null : refquota,
      usedBytes: integer(props.get('used'), 'used', name),
      referencedBytes: integer(props.get('referenced'), 'referenced', name),
    });
  }
  return out.sort((a, b) => a.datasetId.localeCompare(b.datasetId));
}

/** drover's snapshots of `<pool>/drover/<id>` in a `getSnapshots` answer, oldest first (by createtxg). */
export function parseSnapshots(pool: string, id: string, stdout: string): ZfsSnapshotInfo[] {
  const prefix = `${datasetPath(pool, id)}@`;
  const out: ZfsSnapshotInfo[] = [];
  for (const [name, props] of parseGet(stdout)) {
    if (!name.startsWith(prefix)) continue;
    const snapshot = name.slice(prefix.length);
    if (!isDroverSnapshotName(snapshot)) continue; // not ours: never a base, never pruned
    const guid = props.get('guid') ?? '';
    if (!/^[0-9]{1,20}$/.test(guid)) throw new DroverError('DROVER_ZFS_BAD_OUTPUT', `unexpected guid ${JSON.stringify(guid)} for ${name}`);
    const refs = props.get('userrefs');
    out.push({
      name,
      snapshot,
      guid,
      createtxg: integer(props.get('createtxg'), 'createtxg', name),
      userrefs: refs === undefined || refs === '-' ? 0 : integer(refs, 'userrefs', name),
    });
  }
  return out.sort((a, b) => a.createtxg - b.createtxg);
}

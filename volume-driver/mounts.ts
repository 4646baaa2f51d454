/**
 * The mount multiset: per volume, per Docker mount `ID`, how many Mounts succeeded and
 * have not been Unmounted yet (docs/DESIGN.md §9).
 *
 * Docker reuses one ID for `docker cp` and archive calls while a container runs, so one ID
 * may be mounted several times; each Mount adds one, each Unmount takes one, never below
 * zero; an unknown ID is a no-op. Pure data, no I/O: `mount-store.ts` persists it.
 */
import { z } from 'zod';

export const VolumeMounts = z
  .object({
    dataset_id: z.string(),
    /** The mountpoint handed to Docker on the first Mount. */
    path: z.string(),
    ids: z.record(z.string(), z.number().int().min(1)),
  })
  .strict();
export type VolumeMounts = z.infer<typeof VolumeMounts>;

export const MountState = z
  .object({
    version: z.literal(1),
    /** The host's boot id when the state was written: mounts do not outlive a reboot. */
    boot_id: z.string().optional(),
    volumes: z.record(z.string(), VolumeMounts),
    /**
     * Leases this node still has to release: written with the last Unmount (so a crash
     * cannot forget one), dropped once the control service confirmed the release.
     */
    pending_releases: z.array(z.object({ dataset_id: z.string(), name: z.string() }).strict()).default([]),
  })
  .strict();
export type MountState = z.infer<typeof MountState>;

export function emptyMountState(): MountState {
  return { version: 1, volumes: {}, pending_releases: [] };
}

/** Total outstanding mounts of `name` (0 when unknown). */
export function mountCount(state: MountState, name: string): number {
  const volume = state.volumes[name];
  if (!volume) return 0;
  return Object.values(volume.ids).reduce((sum, n) => sum + n, 0);
}

/** Adds one mount of (name, id). Returns the new state and whether it was the volume's first. */
export function addMount(
  state: MountState,
  name: string,
  id: string,
  where: { dataset_id: string; path: string },
): { state: MountState; first: boolean } {
  const before = state.volumes[name];
  const first = mountCount(state, name) === 0;
  const ids = { ...(first ? {} : before?.ids), [id]: ((first ? 0 : before?.ids[id]) ?? 0) + 1 };
  const volume: VolumeMounts = first ? { ...where, ids } : { ...before!, ids };
  return {
    state: { ...state, volumes: { ...state.volumes, [name]: volume }, pending_releases: state.pending_releases.filter((p) => p.dataset_id !== where.dataset_id) },
    first,
  };
}

/**
 * Takes one mount of (name, id) away. `last` is true when this removal brought the volume
 * to zero (its lease should go); an unknown (name, id) changes nothing and is not `last`.
 */
export function removeMount(state: MountState, name: string, id: string): { state: MountState; removed: boolean; last: boolean; volume?: VolumeMounts } {
  const volume = state.volumes[name];
  const count = volume?.ids[id] ?? 0;
  if (!volume || count === 0) return { state, removed: false, last: false };
  const ids = { ...volume.ids };
  if (count === 1) delete ids[id];
  else ids[id] = count - 1;
  const volumes = { ...state.volumes };
  const last = Object.keys(ids).length === 0;
  if (last) delete volumes[name];
  else volumes[name] = { ...volume, ids };
  return { state: { ...state, volumes }, removed: true, last, volume };
}

export type PendingRelease = MountState['pending_releases'][number];

/**
 * The state as it stands after the host rebooted: every mount is gone with the containers
 * that held it, and each of those volumes' leases is now a release to make.
 */
export function afterReboot(state: MountState): MountState {
  let next: MountState = { ...state, volumes: {} };
  for (const [name, volume] of Object.entries(state.volumes)) next = addPendingRelease(next, { dataset_id: volume.dataset_id, name });
  return next;
}

/**
 * Forgets every mount of `name` (no container of this node's dockerd uses it any more: the
 * Unmounts were lost while the plugin was down); its lease becomes a release to make.
 */
export function forgetVolume(state: MountState, name: string): MountState {
  const volume = state.volumes[name];
  if (!volume) return state;
  const volumes = { ...state.volumes };
  delete volumes[name];
  return addPendingRelease({ ...state, volumes }, { dataset_id: volume.dataset_id, name });
}

export function addPendingRelease(state: MountState, pending: PendingRelease): MountState {
  if (state.pending_releases.some((p) => p.dataset_id === pending.dataset_id)) return state;
  return { ...state, pending_releases: [...state.pending_releases, pending] };
}

export function dropPendingRelease(state: MountState, datasetId: string): MountState {
  if (!state.pending_releases.some((p) => p.dataset_id === datasetId)) return state;
  return { ...state, pending_releases: state.pending_releases.filter((p) => p.dataset_id !== datasetId) };
}

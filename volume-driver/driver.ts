/**
 * The volume driver: what each Docker call means for drover (reference §1.4–§1.6).
 *
 * - Get/List/Path answer from the catalog's cached view; Activate and Capabilities from nothing.
 * - Mount is the only call that may wait (arrive.ts). A volume already mounted here answers
 *   from the mount counts with no round trip; the first Mount takes the lease.
 * - Unmount takes one count away; the last one releases the lease (retried later if the
 *   control service is down).
 * - Every call is idempotent: Docker retries on connection errors, so any request may come twice.
 *
 * Errors are DroverErrors whose message is the text Docker shows the user.
 */
import { DroverError, isDroverError } from '#common/errors.ts';
import { systemClock, type Clock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import { arrive, localPath } from './arrive.ts';
import { Catalog, type View } from './catalog.ts';
import { findByName, type ControlPlane, type DatasetConfig, type NodeInfo } from './control.ts';
import { nodeName } from './describe.ts';
import { KeyedMutex } from '#common/keyed-mutex.ts';
import { LeaseKeeper } from './lease-keeper.ts';
import type { MountStore } from './mount-store.ts';
import { addMount, addPendingRelease, dropPendingRelease, forgetVolume, mountCount, removeMount } from './mounts.ts';
import type { DockerVolumes } from './docker-volumes.ts';
import { parseCreateOptions } from './options.ts';

export interface DriverOptions {
  control: ControlPlane;
  store: MountStore;
  nodeUuid: string;
  log: Logger;
  clock?: Clock;
  /** Longest a Mount waits for a volume to arrive; default 90 s (Docker stops at 120 s). */
  mountTimeoutMs?: number;
  pollMs?: number;
  catalogTtlMs?: number;
  /** How long to wait for another node's lease to go before saying "in use" (lease-keeper.ts). */
  othersWaitMs?: number;
  /** This node's dockerd, asked which volumes containers still use (`reconcileMounts`); absent: counts are never corrected. */
  docker?: DockerVolumes;
  /** A volume mounted more recently is never forgotten by `reconcileMounts` (its container may be starting); default MOUNT_SETTLE_MS. */
  mountSettleMs?: number;
}

/** How long after a Mount a volume may be unused in `docker ps` (its container still starting). */
export const MOUNT_SETTLE_MS = 30_000;

/** A volume as Get and List describe it (Docker's field names). */
export interface VolumeInfo {
  Name: string;
  Mountpoint?: string;
  CreatedAt?: string;
  Status?: Record<string, unknown>;
}

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

export class VolumeDriver {
  readonly catalog: Catalog;
  private readonly lock = new KeyedMutex();
  private readonly leases: LeaseKeeper;
  private readonly stopping = new AbortController();
  private readonly o: Required<Omit<DriverOptions, 'catalogTtlMs' | 'othersWaitMs' | 'docker'>> & Pick<DriverOptions, 'docker'>;
  /** Per volume, when it was last mounted here (counts read from disk count as mounted at start). */
  private readonly mountedAt = new Map<string, number>();

  constructor(options: DriverOptions) {
    this.o = { clock: systemClock, mountTimeoutMs: 90_000, pollMs: 250, mountSettleMs: MOUNT_SETTLE_MS, ...options };
    for (const name of Object.keys(options.store.current.volumes)) this.mountedAt.set(name, this.o.clock.now());
    this.catalog = new Catalog({ control: options.control, log: options.log, clock: this.o.clock, ttlMs: options.catalogTtlMs ?? 2_000 });
    this.leases = new LeaseKeeper({ control: options.control, store: options.store, catalog: this.catalog, lock: this.lock, me: options.nodeUuid, log: options.log, othersWaitMs: options.othersWaitMs, clock: this.o.clock });
  }

  /** Ends waiting Mounts with an Err and lets lingering leases go; called when the plugin stops. */
  stop(): void {
    this.stopping.abort();
    this.leases.flush();
  }

  /** Creates the dataset unless a live one has that name anywhere in the cluster (success either way). */
  async create(name: string, opts: Record<string, string> | null): Promise<void> {
    const options = parseCreateOptions(opts ?? {});
    await this.lock.run(name, async () => {
      const primary = options.node === undefined ? this.o.nodeUuid : await this.resolveNode(options.node);
      const { dataset, created } = await this.o.control.createDataset({
        name,
        primary,
        maximumSize: options.size ?? null,
        metadata: { created_at: new Date(this.o.clock.now()).toISOString() },
      });
      this.catalog.invalidate();
      this.o.log.info({ volume: name, datasetId: dataset.dataset_id, primary: dataset.primary, created }, created ? 'volume created' : 'volume already existed');
    });
  }

  async get(name: string): Promise<VolumeInfo> {
    let view = await this.catalog.recent();
    let dataset = findByName(view.datasets, name);
    if (!dataset) {
      // Never say "no such volume" from a cached view: Docker would forget the volume.
      view = await this.catalog.fresh();
      dataset = findByName(view.datasets, name);
    }
    if (!dataset) throw new DroverError('DROVER_VOLUME_NOT_FOUND', `no drover volume named "${name}"`);
    return this.describe(view, dataset, await this.catalog.nodes());
  }

  async list(): Promise<VolumeInfo[]> {
    const [view, nodes] = await Promise.all([this.catalog.recent(), this.catalog.nodes()]);
    return view.datasets.filter((d) => !d.deleted && d.metadata.name).map((d) => this.describe(view, d, nodes));
  }

  /** The mountpoint here; an Err when the volume lives on another node. */
  async path(name: string): Promise<string> {
    const mounted = this.o.store.current.volumes[name];
    if (mounted) return mounted.path;
    const view = await this.catalog.recent();
    const dataset = findByName(view.datasets, name);
    if (!dataset) throw new DroverError('DROVER_VOLUME_NOT_FOUND', `no drover volume named "${name}"`);
    const here = localPath(view, dataset.dataset_id, this.o.nodeUuid);
    if (here !== null) return here;
    const holder = view.states.find((s) => s.dataset_id === dataset.dataset_id)?.primary ?? dataset.primary;
    throw new DroverError('DROVER_VOLUME_NOT_HERE', `volume "${name}" is not on this node: it is on ${nodeName(holder, await this.catalog.nodes(), this.o.nodeUuid)}`);
  }

  /** Counts one more mount of (name, id), bringing the volume here first when needed. */
  async mount(name: string, id: string): Promise<string> {
    return this.lock.run(name, async () => {
      const mounted = this.o.store.current.volumes[name];
      if (mounted && mountCount(this.o.store.current, name) > 0) {
        await this.persist((s) => addMount(s, name, id, mounted).state, (s) => removeMount(s, name, id).state);
        this.mountedAt.set(name, this.o.clock.now());
        return mounted.path;
      }
      const { dataset_id, path } = this.leases.reclaim(name) ?? (await this.leaseIfHere(name)) ?? (await this.bringHere(name));
      try {
        await this.persist((s) => addMount(s, name, id, { dataset_id, path }).state, (s) => removeMount(s, name, id).state);
      } catch (err) {
        await this.o.control.releaseLease(dataset_id).catch(() => undefined);
        throw err;
      }
      this.mountedAt.set(name, this.o.clock.now());
      this.o.log.info({ volume: name, datasetId: dataset_id, path }, 'volume mounted');
      return path;
    });
  }

  /**
   * The common case, in one round trip: a volume this node knows, already here. Takes the
   * lease and reads a fresh view at once; null (lease given back) when the view says the
   * volume is not writable here after all.
   */
  private async leaseIfHere(name: string): Promise<{ dataset_id: string; path: string } | null> {
    const known = findByName(this.catalog.last?.datasets ?? [], name);
    if (!known) return null;
    const [leased, viewed] = await Promise.allSettled([this.leases.take(name, known.dataset_id), this.catalog.fresh()]);
    if (leased.status === 'rejected' && isDroverError(leased.reason, 'DROVER_VOLUME_IN_USE')) throw leased.reason;
    if (leased.status === 'fulfilled' && viewed.status === 'fulfilled') {
      const dataset = findByName(viewed.value.datasets, name);
      const path = dataset?.dataset_id === known.dataset_id && dataset.primary === this.o.nodeUuid ? localPath(viewed.value, known.dataset_id, this.o.nodeUuid) : null;
      if (path !== null) return { dataset_id: known.dataset_id, path };
    }
    if (leased.status === 'fulfilled') await this.o.control.releaseLease(known.dataset_id).catch(() => undefined);
    return null;
  }

  /** The careful way: move the volume here if needed (arrive.ts), then take the lease. */
  private async bringHere(name: string): Promise<{ dataset_id: string; path: string }> {
    const { dataset, path } = await arrive(name, {
      control: this.o.control,
      catalog: this.catalog,
      log: this.o.log,
      me: this.o.nodeUuid,
      clock: this.o.clock,
      timeoutMs: this.o.mountTimeoutMs,
      pollMs: this.o.pollMs,
      leases: this.leases,
      signal: this.stopping.signal,
    });
    await this.leases.take(name, dataset.dataset_id);
    return { dataset_id: dataset.dataset_id, path };
  }

  /**
   * Takes one mount of (name, id) away. Unknown pairs are a no-op. The last one writes the
   * lease's pending release with the count, answers, and releases right after (lease-keeper.ts).
   */
  async unmount(name: string, id: string): Promise<void> {
    await this.lock.run(name, async () => {
      const { removed, last, volume } = removeMount(this.o.store.current, name, id);
      if (!removed || !volume) return;
      const pending = { dataset_id: volume.dataset_id, name };
      await this.o.store.update((s) => {
        const after = removeMount(s, name, id).state;
        return last ? addPendingRelease(after, pending) : after;
      });
      if (last) this.leases.linger(name, volume.dataset_id, volume.path);
    });
  }

  /** Soft-deletes the dataset, unless a container here or another node uses it. */
  async remove(name: string): Promise<void> {
    await this.lock.run(name, async () => {
      const count = mountCount(this.o.store.current, name);
      this.leases.reclaim(name); // a lease lingering after the last Unmount goes with the dataset
      if (count > 0) {
        throw new DroverError('DROVER_VOLUME_IN_USE', `volume "${name}" is in use on this node (${count} mount${count === 1 ? '' : 's'} by containers)`);
      }
      const view = await this.catalog.fresh();
      const dataset = findByName(view.datasets, name);
      if (!dataset) return;
      const holder = await this.leases.heldElsewhere(dataset.dataset_id);
      if (holder) throw await this.leases.inUse(name, holder);
      // Our own lease with no mounts left here is one whose release has not happened yet.
      const lease = (await this.o.control.listLeases()).find((l) => l.dataset_id === dataset.dataset_id);
      if (lease) {
        await this.o.control.releaseLease(dataset.dataset_id);
        await this.o.store.update((s) => dropPendingRelease(s, dataset.dataset_id));
      }
      await this.o.control.deleteDataset(dataset.dataset_id);
      this.catalog.invalidate();
      this.o.log.info({ volume: name, datasetId: dataset.dataset_id }, 'volume removed');
    });
  }

  /**
   * Start-up and timer work: first the counts against dockerd (`reconcileMounts`), then the
   * leases (lease-keeper.ts `reconcile`: renew those of mounted volumes, retry releases).
   * Never throws.
   */
  async reconcile(): Promise<void> {
    await this.reconcileMounts();
    await this.leases.reconcile();
  }

  /**
   * Forgets the mounts of volumes no container of this node's dockerd uses any more (one
   * stopped while the plugin was down: Docker never delivers that Unmount again), and
   * releases their leases. A volume mounted within `mountSettleMs` is left alone: its
   * container may not be running yet. Each volume is decided again inside its lock. When
   * dockerd does not answer nothing changes. Never throws.
   */
  async reconcileMounts(): Promise<string[]> {
    const docker = this.o.docker;
    if (!docker) return [];
    let inUse: ReadonlySet<string>;
    try {
      inUse = await docker.inUse();
    } catch (err) {
      this.o.log.warn({ err }, 'mount counts not checked against dockerd');
      return [];
    }
    const forgotten: string[] = [];
    for (const name of Object.keys(this.o.store.current.volumes)) {
      if (inUse.has(name)) continue;
      await this.lock.run(name, async () => {
        const volume = this.o.store.current.volumes[name];
        if (!volume || mountCount(this.o.store.current, name) === 0) return;
        if (this.o.clock.now() - (this.mountedAt.get(name) ?? 0) < this.o.mountSettleMs) return;
        try {
          await this.o.store.update((s) => forgetVolume(s, name));
        } catch (err) {
          this.o.log.warn({ err, volume: name }, 'stale mounts not forgotten');
          return;
        }
        this.mountedAt.delete(name);
        forgotten.push(name);
        this.o.log.warn({ volume: name, datasetId: volume.dataset_id, mounts: volume.ids }, 'mounts forgotten: no container uses the volume any more');
        await this.leases.releaseNow(name, volume.dataset_id);
      });
    }
    return forgotten;
  }

  /** Releases lingering leases and resolves once no call or release is in flight or queued, or after `timeoutMs`. */
  async settle(timeoutMs = 5_000): Promise<void> {
    this.leases.flush();
    const deadline = this.o.clock.now() + timeoutMs;
    while (this.lock.busy > 0 && this.o.clock.now() < deadline) await this.o.clock.sleep(20);
  }

  /** Applies a change to the counts; when it cannot be written, undoes it in memory and fails. */
  private async persist(change: Parameters<MountStore['update']>[0], undo: Parameters<MountStore['update']>[0]): Promise<void> {
    try {
      await this.o.store.update(change);
    } catch (err) {
      await this.o.store.update(undo).catch(() => undefined);
      throw err;
    }
  }

  private async resolveNode(node: string): Promise<string> {
    const nodes = await this.o.control.listNodes();
    const found = nodes.find((n) => n.uuid === node || n.host === node);
    if (found) return found.uuid;
    const known = nodes.map((n) => n.host).join(', ') || 'none reported yet';
    throw new DroverError('DROVER_VOLUME_BAD_OPTION', `option node="${node}" names no known node (known: ${known})`, { detail: { option: 'node' } });
  }

  private describe(view: View, d: DatasetConfig, nodes: readonly NodeInfo[]): VolumeInfo {
    const mounted = this.o.store.current.volumes[d.metadata.name!];
    const here = mounted?.path ?? localPath(view, d.dataset_id, this.o.nodeUuid);
    const holder = view.states.find((s) => s.dataset_id === d.dataset_id)?.primary ?? null;
    const info: VolumeInfo = {
      Name: d.metadata.name!,
      Status: {
        dataset_id: d.dataset_id,
        primary: d.primary,
        node: nodes.find((n) => n.uuid === d.primary)?.host ?? null,
        holder,
        local: here !== null,
        maximum_size: d.maximum_size,
        mounts: mountCount(this.o.store.current, d.metadata.name!),
      },
    };
    if (here !== null) info.Mountpoint = here;
    const created = d.metadata.created_at;
    if (created && RFC3339.test(created)) info.CreatedAt = created;
    return info;
  }
}

/**
 * The leases this node's plugin holds: one per volume mounted here, taken by the first Mount
 * and released after the last Unmount, so that while a container uses a volume the control
 * service moves and deletes it nowhere else.
 *
 * The release waits LINGER_MS after the last Unmount: `docker run` mounts twice in a row (the
 * copy of image files at create, then the start), and a Mount within the linger reclaims the
 * lease with no round trip at all — it was held throughout, so the volume cannot have moved.
 * Other nodes wait up to OTHERS_WAIT_MS for a lease to go before saying "in use".
 *
 * The release runs in the volume's lock, so a Mount that follows cannot be overtaken by it.
 * It is written down (mounts.ts `pending_releases`) in the same state write as the last
 * Unmount, so a crash or a control-service outage delays it but never forgets it.
 *
 * Leases expire LEASE_TTL_SECONDS after they were last taken; `reconcile` (every 10 s in
 * main.ts) renews those of the volumes mounted here. A node that dies therefore lets its
 * volumes go within a minute, instead of pinning them until an operator deletes the lease.
 */
import { DroverError, isDroverError } from '#common/errors.ts';
import { runAfter, systemClock, type Clock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import type { Catalog } from './catalog.ts';
import type { ControlPlane } from './control.ts';
import { describeInUse } from './describe.ts';
import type { KeyedMutex } from '#common/keyed-mutex.ts';
import type { MountStore } from './mount-store.ts';
import { dropPendingRelease, mountCount } from './mounts.ts';

export interface LeaseKeeperOptions {
  control: ControlPlane;
  store: MountStore;
  catalog: Catalog;
  /** The driver's per-volume lock: lease work for a volume runs in it. */
  lock: KeyedMutex;
  /** How long to wait for another node's lease to go before saying "in use"; default OTHERS_WAIT_MS. */
  othersWaitMs?: number;
  me: string;
  log: Logger;
  /** Time for the linger, the waits for other nodes and their retries; default the system clock. */
  clock?: Clock;
}

export const LINGER_MS = 500;
/**
 * How long a lease lives without renewal. Renewed every 10 s, it survives five missed
 * renewals (a control service restarting); short enough that a dead node's volumes can be
 * used elsewhere about a minute later.
 */
export const LEASE_TTL_SECONDS = 60;
export const OTHERS_WAIT_MS = 3_000;
const RETRY_MS = 200;

export class LeaseKeeper {
  /** Volumes whose lease lingers; `cancel` ends the linger without a release. */
  private readonly lingering = new Map<string, { datasetId: string; path: string; cancel: () => void }>();
  private readonly clock: Clock;

  constructor(private readonly o: LeaseKeeperOptions) {
    this.clock = o.clock ?? systemClock;
  }

  /**
   * Takes (or renews) this node's lease. When another node holds it, tries again for up to
   * OTHERS_WAIT_MS (a container there may be just stopping), then fails with
   * DROVER_VOLUME_IN_USE naming the holder.
   */
  async take(name: string, datasetId: string): Promise<void> {
    const started = this.clock.now();
    for (;;) {
      try {
        await this.o.control.acquireLease(datasetId, this.o.me, LEASE_TTL_SECONDS);
        return;
      } catch (err) {
        if (!isDroverError(err, 'DROVER_LEASE_HELD')) throw err;
        if (this.clock.now() - started >= (this.o.othersWaitMs ?? OTHERS_WAIT_MS)) throw await this.inUse(name, String(err.detail.node_uuid ?? 'another node'), err);
        await this.clock.sleep(RETRY_MS);
      }
    }
  }

  /** The node other than this one holding the dataset's lease after up to OTHERS_WAIT_MS, or null. */
  async heldElsewhere(datasetId: string): Promise<string | null> {
    const started = this.clock.now();
    for (;;) {
      const holder = (await this.o.control.listLeases()).find((l) => l.dataset_id === datasetId && l.node_uuid !== this.o.me)?.node_uuid ?? null;
      if (holder === null || this.clock.now() - started >= (this.o.othersWaitMs ?? OTHERS_WAIT_MS)) return holder;
      await this.clock.sleep(RETRY_MS);
    }
  }

  async inUse(name: string, holder: string, cause?: unknown): Promise<DroverError> {
    return new DroverError('DROVER_VOLUME_IN_USE', describeInUse(name, holder, await this.o.catalog.nodes(), this.o.me), { cause, detail: { node_uuid: holder } });
  }

  /**
   * After the last Unmount (its pending release on disk): keeps the lease LINGER_MS for a
   * Mount that may follow, then releases it. Call inside the volume's lock.
   */
  linger(name: string, datasetId: string, path: string): void {
    this.reclaim(name);
    const cancel = runAfter(this.clock, LINGER_MS, () => {
      this.lingering.delete(name);
      this.releaseSoon(name, datasetId);
    });
    this.lingering.set(name, { datasetId, path, cancel });
  }

  /** The lease of a volume unmounted a moment ago, still held: the Mount may use it as it is. Call inside the lock. */
  reclaim(name: string): { dataset_id: string; path: string } | null {
    const held = this.lingering.get(name);
    if (!held) return null;
    held.cancel();
    this.lingering.delete(name);
    return { dataset_id: held.datasetId, path: held.path };
  }

  /** Releases every lingering lease now (queued in the locks); for stopping and for tests. */
  flush(): void {
    for (const [name, held] of [...this.lingering]) {
      held.cancel();
      this.lingering.delete(name);
      this.releaseSoon(name, held.datasetId);
    }
  }

  /**
   * Queues the release of a lease whose pending mark is already on disk; call it from inside
   * the volume's lock, so it runs right after the current task. Never throws.
   */
  releaseSoon(name: string, datasetId: string): void {
    void this.o.lock.run(name, () => this.releaseNow(name, datasetId));
  }

  /** Releases now, if nothing is mounted here any more; a failure leaves the pending mark. Call inside the lock. */
  async releaseNow(name: string, datasetId: string): Promise<void> {
    const mounted = this.o.store.current.volumes[name];
    if (mounted?.dataset_id === datasetId && mountCount(this.o.store.current, name) > 0) {
      await this.o.store.update((s) => dropPendingRelease(s, datasetId)).catch(() => undefined);
      return;
    }
    try {
      await this.o.control.releaseLease(datasetId);
      await this.o.store.update((s) => dropPendingRelease(s, datasetId));
    } catch (err) {
      this.o.log.warn({ err, volume: name, datasetId }, 'lease release failed; will retry');
    }
  }

  /**
   * Start-up and timer work: re-takes the leases of volumes mounted here (the counts came
   * from disk: the control service may have lost or expired them) and retries pending
   * releases. Each step runs in its volume's lock. Never throws.
   */
  async reconcile(): Promise<void> {
    for (const [name, volume] of Object.entries(this.o.store.current.volumes)) {
      await this.o.lock.run(name, async () => {
        if (mountCount(this.o.store.current, name) === 0) return;
        await this.take(name, volume.dataset_id).catch((err: unknown) => {
          this.o.log.error({ err, volume: name, datasetId: volume.dataset_id }, 'lease of a mounted volume could not be taken');
        });
      });
    }
    for (const { name, dataset_id } of this.o.store.current.pending_releases) {
      await this.o.lock.run(name, () => this.releaseNow(name, dataset_id));
    }
  }
}

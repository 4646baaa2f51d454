/**
 * The leases this node's plugin holds: one per volume mounted here, taken by the first Mount
 * and released after the last Unmount, so that while a container uses a volume the control
 * service moves and deletes it nowhere else.
 *
 * A release runs after the Unmount has answered Docker (it is not on `docker run`'s path),
 * but in the volume's lock, so a Mount that follows cannot be overtaken by it. The release is
 * written down (mounts.ts `pending_releases`) in the same state write as the last Unmount,
 * so a crash or a control-service outage delays it but never forgets it: `reconcile` retries.
 */
import { DroverError, isDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { Catalog } from './catalog.ts';
import type { ControlPlane } from './control.ts';
import { describeInUse } from './describe.ts';
import type { KeyedLock } from './keyed-lock.ts';
import type { MountStore } from './mount-store.ts';
import { dropPendingRelease, mountCount } from './mounts.ts';

export interface LeaseKeeperOptions {
  control: ControlPlane;
  store: MountStore;
  catalog: Catalog;
  /** The driver's per-volume lock: lease work for a volume runs in it. */
  lock: KeyedLock;
  me: string;
  log: Logger;
}

export class LeaseKeeper {
  constructor(private readonly o: LeaseKeeperOptions) {}

  /** Takes (or renews) this node's lease; DROVER_VOLUME_IN_USE naming the holder when another node has it. */
  async take(name: string, datasetId: string): Promise<void> {
    try {
      await this.o.control.acquireLease(datasetId, this.o.me);
    } catch (err) {
      if (isDroverError(err, 'DROVER_LEASE_HELD')) {
        const holder = String(err.detail.node_uuid ?? 'another node');
        throw new DroverError('DROVER_VOLUME_IN_USE', describeInUse(name, holder, await this.o.catalog.nodes(), this.o.me), { cause: err, detail: { node_uuid: holder } });
      }
      throw err;
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

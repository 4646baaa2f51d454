/**
 * The receiving side run by the agent itself, over its own ZfsStore: what the tls server
 * serves to a sending agent, and a `Peer` for replication between two pools of one host.
 * One step per dataset at a time (a per-dataset mutex); receives are `recv -u` and leave
 * the replica read-only.
 */
import { DroverError, isDroverError, toDroverError } from '#common/errors.ts';
import type { ZfsStore } from '../zfs/zfs.ts';
import { assertDatasetId, divergedPath } from '../zfs/names.ts';
import type { ZfsFeatures } from '../zfs/zfs-features.ts';
import { KeyedMutex } from '#common/keyed-mutex.ts';
import { readReceived } from './received.ts';
import type { Peer, PeerStep, ReceiveSink } from './types.ts';

export class LocalPeer implements Peer {
  private readonly mutex = new KeyedMutex({ busyCode: 'DROVER_TRANSFER_BUSY', abortedCode: 'DROVER_TRANSFER_ABORTED', what: 'transfer' });
  private rootReady = false;

  constructor(
    readonly id: string,
    private readonly store: ZfsStore,
  ) {}

  features(): Promise<ZfsFeatures> {
    return this.store.features();
  }

  /** True while a step holds `datasetId` (the tls server reports it). */
  busy(datasetId: string): boolean {
    return this.mutex.isHeld(datasetId);
  }

  async beginStep(datasetId: string, options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<PeerStep> {
    assertDatasetId(datasetId);
    const unlock = await this.mutex.acquire(datasetId, { waitMs: options.waitMs ?? 600_000, signal: options.signal });
    try {
      // A full receive needs `<pool>/drover` to exist.
      if (!this.rootReady) await this.store.ensureRoot();
      this.rootReady = true;
    } catch (err) {
      unlock();
      throw err;
    }
    return new LocalStep(datasetId, this.store, unlock);
  }

  async close(): Promise<void> {}
}

class LocalStep implements PeerStep {
  private receiving: ReceiveSink | null = null;
  private ended = false;

  constructor(
    readonly datasetId: string,
    private readonly store: ZfsStore,
    private readonly unlock: () => void,
  ) {}

  getDataset() {
    return this.store.getDataset(this.datasetId);
  }

  state() {
    return this.store.getDatasetState(this.datasetId);
  }

  async listSnapshots() {
    try {
      return await this.store.listSnapshots(this.datasetId);
    } catch (err) {
      if (isDroverError(err, 'DROVER_DATASET_NOT_FOUND')) return [];
      throw err;
    }
  }

  hold(snapshot: string, tag: string) {
    return this.store.hold(this.datasetId, snapshot, tag);
  }

  release(snapshot: string, tag: string) {
    return this.store.release(this.datasetId, snapshot, tag);
  }

  rollback(snapshot: string) {
    return this.store.rollback(this.datasetId, snapshot);
  }

  destroySnapshot(snapshot: string) {
    return this.store.destroySnapshot(this.datasetId, snapshot);
  }

  /** Only a read-only copy (a replica, never live data), and never over a copy kept already. */
  async setAside(generation: number): Promise<string> {
    const info = await this.store.getDataset(this.datasetId);
    if (info === null) throw new DroverError('DROVER_DATASET_NOT_FOUND', `dataset ${this.datasetId} is not here: nothing to set aside`, { detail: { datasetId: this.datasetId } });
    if (!info.readonly) {
      throw new DroverError('DROVER_TRANSFER_TARGET_WRITABLE', `${info.name} is writable (a primary, not a replica): it is never set aside by a sender`, { detail: { datasetId: this.datasetId } });
    }
    const kept = divergedPath(this.store.pool, this.datasetId, generation);
    if ((await this.store.listDiverged()).some((c) => c.name === kept)) {
      throw new DroverError('DROVER_ZFS_EXISTS', `${kept} exists already: the copy ${info.name} stays where it is`, { detail: { datasetId: this.datasetId, kept } });
    }
    await this.store.setAside(this.datasetId, generation);
    return kept;
  }

  resumeToken() {
    return this.store.resumeToken(this.datasetId);
  }

  abortResume() {
    return this.store.abortResume(this.datasetId);
  }

  receive(options: { resumable: boolean; full: boolean }): ReceiveSink {
    if (this.ended) throw new DroverError('DROVER_TRANSFER_STEP_ENDED', 'the step has ended');
    if (this.receiving) throw new DroverError('DROVER_TRANSFER_BUSY', `a receive into ${this.datasetId} is running`, { retryable: true });
    const process = this.store.receive(this.datasetId, options.resumable);
    const input = process.input!;
    // A cut stream makes `zfs receive` fail; its exit status, not EPIPE, tells why.
    input.on('error', () => {});
    // An increment keeps the replica's properties; only a new replica needs settling. Then
    // the snapshot it holds, read here: the sender's guid check needs no request of its own.
    const done = process.done.then(async () => {
      if (options.full) await this.store.settleReplica(this.datasetId);
      return readReceived(this.store, this.datasetId);
    });
    done.catch(() => {}).finally(() => (this.receiving = null));
    const sink: ReceiveSink = {
      input,
      done,
      abort: () => {
        input.destroy();
        process.kill('SIGTERM');
      },
    };
    this.receiving = sink;
    return sink;
  }

  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const running = this.receiving;
    if (running) {
      running.abort(new DroverError('DROVER_TRANSFER_STEP_ENDED', 'the step ended during a receive'));
      await running.done.catch((err: unknown) => toDroverError(err));
    }
    this.unlock();
  }
}

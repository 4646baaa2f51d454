/**
 * The ssh transport: a `Peer` whose zfs runs on the other host, over one persistent ssh2
 * connection to its OpenSSH server (docs/DESIGN.md §7). There, drover's key runs only
 * drover-receive (its forced command, docs/DESIGN.md §24): short requests go to its session,
 * and the stream goes through its receive straight into `zfs receive -u`.
 *
 * XXX: the per-dataset lock is this process's; two *different* senders to one ssh peer are
 * kept apart only by zfs itself (a second receive into one dataset fails). The tls
 * transport locks on the receiving side.
 */
import { Writable } from 'node:stream';
import { DroverError, isDroverError, toDroverError } from '#common/errors.ts';
import { KeyedMutex } from '#common/keyed-mutex.ts';
import type { Logger } from '#common/log.ts';
import { assertDatasetId, assertPoolName } from '../zfs/names.ts';
import type { ZfsDatasetInfo, ZfsSnapshotInfo } from '../zfs/types.ts';
import type { ZfsFeatures } from '../zfs/zfs-features.ts';
import { SshConnection, type RemoteReceive, type SshEndpoint } from './ssh-connection.ts';
import { receivedOf } from './received.ts';
import type { StreamChannel } from './ssh-resident.ts';
import type { Peer, PeerStep, ReceiveSink } from './types.ts';

export interface SshPeerOptions extends SshEndpoint {
  /** The peer's node uuid (journal and lock keys). */
  id: string;
  /**
   * The peer's pool: its datasets are `<pool>/drover/<dataset_id>`. The peer's forced command
   * names its one pool and refuses any other; where it mounts datasets is its own setting.
   */
  pool: string;
  log?: Logger;
}

export class SshPeer implements Peer {
  readonly id: string;
  readonly connection: SshConnection;
  private readonly pool: string;
  private readonly mutex = new KeyedMutex({ busyCode: 'DROVER_TRANSFER_BUSY', abortedCode: 'DROVER_TRANSFER_ABORTED', what: 'transfer' });
  private rootReady = false;
  private featuresProbe: Promise<ZfsFeatures> | null = null;
  /** False once the peer's drover-receive refused `getState` (an older one): two reads instead. */
  private readonly support = { state: true };

  constructor(options: SshPeerOptions) {
    assertPoolName(options.pool);
    this.id = options.id;
    this.pool = options.pool;
    this.connection = new SshConnection(options);
  }

  features(): Promise<ZfsFeatures> {
    if (!this.featuresProbe) {
      this.featuresProbe = this.connection.request({ op: 'features', pool: this.pool }, { timeoutMs: 60_000 }) as Promise<ZfsFeatures>;
      this.featuresProbe.catch(() => (this.featuresProbe = null));
    }
    return this.featuresProbe;
  }

  async beginStep(datasetId: string, options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<PeerStep> {
    assertDatasetId(datasetId);
    // Start the receive's remote process now, so it is ready when the stream starts.
    this.connection.prewarm();
    const unlock = await this.mutex.acquire(datasetId, { waitMs: options.waitMs ?? 600_000, signal: options.signal });
    try {
      // A full receive needs `<pool>/drover` to exist.
      if (!this.rootReady) await this.connection.request({ op: 'prepare', pool: this.pool });
      this.rootReady = true;
    } catch (err) {
      unlock();
      throw err;
    }
    return new SshStep(datasetId, this.pool, this.connection, unlock, this.support);
  }

  async prepareReceive(datasetId: string, options: { resumable: boolean; full: boolean }): Promise<void> {
    assertDatasetId(datasetId);
    await this.connection.preopen({ op: 'receive', pool: this.pool, datasetId, ...options });
  }

  async close(): Promise<void> {
    this.connection.close();
  }
}

class SshStep implements PeerStep {
  private receiving: ReceiveSink | null = null;
  private ended = false;

  constructor(
    readonly datasetId: string,
    private readonly pool: string,
    private readonly connection: SshConnection,
    private readonly unlock: () => void,
    private readonly support: { state: boolean },
  ) {}

  private ask(op: string, extra: Record<string, unknown> = {}): Promise<unknown> {
    return this.connection.request({ op, pool: this.pool, datasetId: this.datasetId, ...extra });
  }

  getDataset() { return this.ask('getDataset') as Promise<ZfsDatasetInfo | null>; }
  listSnapshots() { return this.ask('listSnapshots') as Promise<ZfsSnapshotInfo[]>; }

  async state(): Promise<{ dataset: ZfsDatasetInfo | null; snapshots: ZfsSnapshotInfo[] }> {
    if (this.support.state) {
      try {
        return (await this.ask('getState')) as { dataset: ZfsDatasetInfo | null; snapshots: ZfsSnapshotInfo[] };
      } catch (err) {
        // An older drover-receive does not know the request: it refuses it and the session goes on.
        if (!isDroverError(err, 'DROVER_SSH_RECEIVE_REFUSED')) throw err;
        this.support.state = false;
      }
    }
    const [dataset, snapshots] = await Promise.all([this.getDataset(), this.listSnapshots()]);
    return { dataset, snapshots };
  }
  async hold(snapshot: string, tag: string) { await this.ask('hold', { snapshot, tag }); }
  async release(snapshot: string, tag: string) { await this.ask('release', { snapshot, tag }); }
  async rollback(snapshot: string) { await this.ask('rollback', { snapshot }); }
  setAside(generation: number) { return this.ask('setAside', { generation }) as Promise<string>; }
  async destroySnapshot(snapshot: string) { await this.ask('destroySnapshot', { snapshot }); }
  resumeToken() { return this.ask('resumeToken') as Promise<string | null>; }
  async abortResume() { await this.ask('abortResume'); }

  receive(options: { resumable: boolean; full: boolean }): ReceiveSink {
    if (this.ended) throw new DroverError('DROVER_TRANSFER_STEP_ENDED', 'the step has ended');
    if (this.receiving) throw new DroverError('DROVER_TRANSFER_BUSY', `a receive into ${this.datasetId} is running`, { retryable: true });
    const started = this.connection.receive({ op: 'receive', pool: this.pool, datasetId: this.datasetId, ...options });
    started.catch(() => {});
    const input = new ChannelInput(started.then((r) => r.channel));
    // A cut stream makes `zfs receive` fail; its verdict, not EPIPE, tells why.
    input.on('error', () => {});
    const done = started.then((r: RemoteReceive) => r.verdict).then(receivedOf);
    done.catch(() => {}).finally(() => (this.receiving = null));
    const sink: ReceiveSink = {
      input,
      done,
      abort: () => {
        input.destroy();
        started.then((r) => r.channel.close(), () => {});
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

/** stdin of the remote receive: forwards to the channel once it is open, with the channel's backpressure. */
class ChannelInput extends Writable {
  private channel: StreamChannel | null = null;

  constructor(private readonly ready: Promise<StreamChannel>) {
    super({ highWaterMark: 4 * 1024 * 1024 });
    ready.then((c) => (this.channel = c)).catch(() => {});
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    const write = (channel: StreamChannel): void => {
      if (channel.write(chunk)) callback();
      else channel.once('drain', () => callback());
    };
    if (this.channel) write(this.channel);
    else this.ready.then(write, (err: Error) => callback(err));
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.ready.then((c) => c.end(() => callback()), (err: Error) => callback(err));
  }

  /**
   * Closes the channel only for a failure: a Writable destroys itself after 'finish', and
   * the verdict (which comes after drover-receive settled the replica) still has to arrive.
   */
  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (err) this.ready.then((c) => c.close(), () => {});
    callback(err);
  }
}

/**
 * The ssh transport: a `Peer` whose zfs runs on the other host over one persistent ssh2
 * connection to its OpenSSH server (docs/DESIGN.md §7). Nothing of drover runs there: the peer's
 * `zfs receive -u` reads the stream from the channel.
 *
 * XXX: the per-dataset lock is this process's; two *different* senders to one ssh peer are
 * kept apart only by zfs itself (a second receive into one dataset fails). The tls
 * transport locks on the receiving side.
 */
import type { Logger } from '#common/log.ts';
import { ZfsStore } from '../zfs/zfs.ts';
import type { ZfsFeatures } from '../zfs/zfs-features.ts';
import { LocalPeer } from './local-peer.ts';
import { SshConnection, type SshEndpoint } from './ssh-connection.ts';
import { SshRunner } from './ssh-runner.ts';
import type { Peer, PeerStep } from './types.ts';

export interface SshPeerOptions extends SshEndpoint {
  /** The peer's node uuid (journal and lock keys). */
  id: string;
  /** The peer's pool: its datasets are `<pool>/drover/<dataset_id>`. */
  pool: string;
  /** Where the peer mounts drover datasets, when it sets them explicitly. */
  mountRoot?: string | null;
  zfsPath?: string;
  log?: Logger;
}

export class SshPeer implements Peer {
  readonly id: string;
  readonly connection: SshConnection;
  private readonly inner: LocalPeer;

  constructor(options: SshPeerOptions) {
    this.id = options.id;
    this.connection = new SshConnection(options);
    const store = new ZfsStore({
      pool: options.pool,
      runner: new SshRunner(this.connection),
      mountRoot: options.mountRoot ?? null,
      zfsPath: options.zfsPath,
      log: options.log?.child({ peer: options.id }),
    });
    this.inner = new LocalPeer(options.id, store);
  }

  features(): Promise<ZfsFeatures> {
    return this.inner.features();
  }

  beginStep(datasetId: string, options?: { waitMs?: number; signal?: AbortSignal }): Promise<PeerStep> {
    // Start the receive's remote shell now, so it is ready when the stream starts.
    this.connection.prewarm();
    return this.inner.beginStep(datasetId, options);
  }

  async close(): Promise<void> {
    this.connection.close();
  }
}

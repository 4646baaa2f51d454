/**
 * The tls transport, sending side: a `Peer` that talks to another agent's TransferServer
 * over mutual TLS (cluster CA). One connection per step. The stream goes through the
 * native pump on a data connection of its own when both agents have it (native-pump.ts),
 * else as data frames on the TLS connection, written straight from `zfs send`'s chunks with
 * the socket's backpressure.
 */
import { checkServerIdentity, connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Writable } from 'node:stream';
import { DroverError, toDroverError } from '#common/errors.ts';
import type { ZfsDatasetInfo, ZfsSnapshotInfo } from '../zfs/types.ts';
import type { ZfsFeatures } from '../zfs/zfs-features.ts';
import type { TlsIdentity } from './tls-certs.ts';
import { FrameDecoder, dataEndFrame, dataHeader, encodeMessage } from './tls-frames.ts';
import { NATIVE_CHANNEL, channelSecrets, findNativePump, startSendPump } from './native-pump.ts';
import { receivedOf } from './received.ts';
import { BeginAnswer, ChannelAnswer, Response, fromWire, type Request } from './tls-protocol.ts';
import { SOCKET_HIGH_WATER_MARK, TLS_CIPHERS } from './tls-server.ts';
import type { Peer, PeerStep, ReceiveSink } from './types.ts';

export interface TlsPeerOptions {
  /** The peer's node uuid. */
  id: string;
  host: string;
  port: number;
  identity: TlsIdentity;
  /**
   * The CN the peer's certificate must carry: the transfer TLS identity the control service
   * recorded when the node joined (Node.identity.name, docs/DESIGN.md §23). Absent: any
   * certificate of the cluster CA that names the address.
   */
  expectedName?: string;
  connectTimeoutMs?: number;
  /**
   * The native data pump (native/build/drover-pump); null streams in-process. Default: the
   * built one, if there is one.
   */
  pump?: string | null;
}

type Pending = { resolve: (value: unknown) => void; reject: (err: DroverError) => void };
type Body = Request extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

/** One connection: request/response by id, plus the data stream of a receive. */
class Connection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly verdicts = new Map<number, Pending>();
  private closedWith: DroverError | null = null;

  constructor(
    readonly socket: TLSSocket,
    private readonly peerId: string,
  ) {
    const decoder = new FrameDecoder({
      message: (raw) => this.onMessage(raw),
      data: () => this.close(new DroverError('DROVER_TRANSFER_PROTOCOL', 'unexpected data from the receiver')),
      dataEnd: () => {},
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        this.close(err as DroverError);
      }
    });
    socket.on('error', (err) => this.close(/alert|certificate|unknown ca/i.test(err.message) ? rejected(peerId, err) : interrupted(peerId, err.message)));
    socket.on('close', () => this.close(interrupted(peerId, 'connection closed')));
  }

  /** Resolves on the receiver's greeting; a close before it means our certificate was refused. */
  greeted(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.close(rejected(this.peerId, new Error('no greeting'))), timeoutMs);
      this.pending.set(0, {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err.code === 'DROVER_TRANSFER_INTERRUPTED' ? rejected(this.peerId, err) : err);
        },
      });
    });
  }

  request(body: Body): Promise<unknown> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(encodeMessage({ ...body, id }));
    });
  }

  /** Sends a receive request; resolves when the receiver is ready, `verdict` when it finished. */
  startReceive(body: Body): { ready: Promise<unknown>; verdict: Promise<unknown> } {
    const id = this.nextId;
    const verdict = new Promise<unknown>((resolve, reject) => this.verdicts.set(id, { resolve, reject }));
    verdict.catch(() => {});
    return { ready: this.request(body), verdict };
  }

  close(err: DroverError): void {
    if (this.closedWith) return;
    this.closedWith = err;
    for (const p of [...this.pending.values(), ...this.verdicts.values()]) p.reject(err);
    this.pending.clear();
    this.verdicts.clear();
    this.socket.destroy();
  }

  private onMessage(raw: unknown): void {
    const parsed = Response.safeParse(raw);
    if (!parsed.success) return this.close(new DroverError('DROVER_TRANSFER_PROTOCOL', 'bad response from the receiver'));
    const message = parsed.data;
    const table = message.event === 'received' ? this.verdicts : this.pending;
    const waiter = table.get(message.id);
    if (!waiter) return;
    table.delete(message.id);
    if (message.ok) waiter.resolve(message.value);
    else waiter.reject(fromWire(message.error, this.peerId));
  }
}

function interrupted(peerId: string, why: string): DroverError {
  return new DroverError('DROVER_TRANSFER_INTERRUPTED', `tls connection to ${peerId}: ${why}`, { retryable: true, detail: { peer: peerId } });
}

/**
 * The receiver refused our certificate: permanent. TLS 1.3 lets the client finish its
 * handshake before the server has checked the client certificate, so a close before the
 * receiver's greeting is read as a refusal.
 */
function rejected(peerId: string, err: Error): DroverError {
  return new DroverError('DROVER_TLS_REJECTED', `${peerId} refused this node's certificate: ${err.message}`, { detail: { peer: peerId }, cause: err });
}

/** stdin of the remote receive: each write becomes one data frame, written without copying. */
class FramedInput extends Writable {
  constructor(
    private readonly socket: TLSSocket,
    private readonly ready: Promise<unknown>,
  ) {
    super({ highWaterMark: SOCKET_HIGH_WATER_MARK });
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    this.ready.then(() => {
      let length = 0;
      for (const c of chunks) length += c.chunk.length;
      this.socket.cork();
      this.socket.write(dataHeader(length));
      let flushed = true;
      for (const c of chunks) flushed = this.socket.write(c.chunk);
      this.socket.uncork();
      if (flushed) callback();
      else this.socket.once('drain', () => callback());
    }, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.ready.then(() => {
      this.socket.write(dataEndFrame());
      callback();
    }, callback);
  }
}

/** How long a cut native receive waits for the receiver's verdict. */
const VERDICT_GRACE_MS = 5_000;

interface NativeTarget {
  pump: string;
  host: string;
  port: number;
  timeoutMs: number;
}

class TlsStep implements PeerStep {
  /** The dataset and its snapshots in one request (one zfs command there); absent when the receiver does not take it. */
  readonly state?: () => Promise<{ dataset: ZfsDatasetInfo | null; snapshots: ZfsSnapshotInfo[] }>;

  constructor(
    readonly datasetId: string,
    private readonly connection: Connection,
    /** Set when both ends have the native pump. */
    private readonly native: NativeTarget | null,
    /** The receiver's `begin` answer offered `getState`. */
    getState = false,
  ) {
    if (getState) this.state = () => this.connection.request({ op: 'getState' }) as Promise<{ dataset: ZfsDatasetInfo | null; snapshots: ZfsSnapshotInfo[] }>;
  }

  getDataset() { return this.connection.request({ op: 'getDataset' }) as Promise<ZfsDatasetInfo | null>; }
  listSnapshots() { return this.connection.request({ op: 'listSnapshots' }) as Promise<ZfsSnapshotInfo[]>; }
  async hold(snapshot: string, tag: string) { await this.connection.request({ op: 'hold', snapshot, tag }); }
  async release(snapshot: string, tag: string) { await this.connection.request({ op: 'release', snapshot, tag }); }
  async rollback(snapshot: string) { await this.connection.request({ op: 'rollback', snapshot }); }
  setAside(generation: number) { return this.connection.request({ op: 'setAside', generation }) as Promise<string>; }
  async destroySnapshot(snapshot: string) { await this.connection.request({ op: 'destroySnapshot', snapshot }); }
  resumeToken() { return this.connection.request({ op: 'resumeToken' }) as Promise<string | null>; }
  async abortResume() { await this.connection.request({ op: 'abortResume' }); }

  receive(options: { resumable: boolean; full: boolean }): ReceiveSink {
    if (this.native) return this.receiveNative(options, this.native);
    const { ready, verdict } = this.connection.startReceive({ op: 'receive', ...options });
    ready.catch(() => {});
    const input = new FramedInput(this.connection.socket, ready);
    input.on('error', () => {});
    return {
      input,
      done: verdict.then(receivedOf),
      abort: (reason) => this.connection.close(reason instanceof DroverError ? reason : interrupted(this.datasetId, reason.message)),
    };
  }

  /**
   * The pump starts at once (zfs send writes into its stdin) and waits for its secrets; they
   * follow when the receiver has named the channel, and the pump connects by itself.
   */
  private receiveNative(options: { resumable: boolean; full: boolean }, target: NativeTarget): ReceiveSink {
    const pump = startSendPump(target.pump, target);
    const { ready, verdict } = this.connection.startReceive({ op: 'receive', ...options, dataChannel: NATIVE_CHANNEL });
    ready
      .then((value) => {
        const answer = ChannelAnswer.safeParse(value);
        if (!answer.success) throw new DroverError('DROVER_TRANSFER_PROTOCOL', `${this.datasetId}: the receiver did not open a data channel`);
        const { key, hello } = channelSecrets(this.connection.socket, Buffer.from(answer.data.channel, 'hex'));
        pump.give(Buffer.concat([key, hello]));
      })
      .catch((err: unknown) => pump.kill(toDroverError(err)));
    return {
      input: pump.stdin!,
      direct: { pumped: (watch) => pump.watch(watch) },
      done: verdict.then(receivedOf),
      abort: (reason) => {
        const err = reason instanceof DroverError ? reason : interrupted(this.datasetId, reason.message);
        pump.kill(err);
        // The receiver sees the data connection end and answers with its verdict, which may
        // say more than we know ("out of space" rather than a reset): it gets a moment to
        // arrive before the control connection goes.
        const timer = setTimeout(() => this.connection.close(err), VERDICT_GRACE_MS);
        void verdict.catch(() => {}).finally(() => {
          clearTimeout(timer);
          this.connection.close(err);
        });
      },
    };
  }

  async end(): Promise<void> {
    await this.connection.request({ op: 'end' }).catch(() => {});
    this.connection.socket.end();
  }
}

export class TlsPeer implements Peer {
  readonly id: string;
  private featuresProbe: Promise<ZfsFeatures> | null = null;
  private readonly pump: string | null;

  constructor(private readonly options: TlsPeerOptions) {
    this.id = options.id;
    this.pump = options.pump === undefined ? findNativePump() : options.pump;
  }

  features(): Promise<ZfsFeatures> {
    if (!this.featuresProbe) {
      this.featuresProbe = this.connect().then(async (c) => {
        try {
          return (await c.request({ op: 'features' })) as ZfsFeatures;
        } finally {
          c.socket.end();
        }
      });
      this.featuresProbe.catch(() => (this.featuresProbe = null));
    }
    return this.featuresProbe;
  }

  async beginStep(datasetId: string, options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<PeerStep> {
    const connection = await this.connect();
    const onAbort = (): void => connection.close(new DroverError('DROVER_TRANSFER_ABORTED', 'aborted'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let offered: string[] = [];
    let getState = false;
    try {
      const answer = BeginAnswer.parse(await connection.request({ op: 'begin', datasetId, waitMs: options.waitMs ?? 600_000 }));
      offered = answer?.dataChannels ?? [];
      getState = answer?.getState === true;
    } catch (err) {
      connection.socket.destroy();
      throw err;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
    // The data connection goes where the TLS connection went, not to a fresh lookup of the name.
    const host = connection.socket.remoteAddress ?? this.options.host;
    const port = connection.socket.remotePort ?? this.options.port;
    const native = this.pump && offered.includes(NATIVE_CHANNEL) ? { pump: this.pump, host, port, timeoutMs: this.options.connectTimeoutMs ?? 15_000 } : null;
    return new TlsStep(datasetId, connection, native, getState);
  }

  async close(): Promise<void> {}

  private connect(): Promise<Connection> {
    const { host, port, identity } = this.options;
    return new Promise((resolve, reject) => {
      const options: ConnectionOptions & { highWaterMark: number } = {
        host,
        port,
        ca: identity.ca,
        cert: identity.cert,
        key: identity.key,
        minVersion: 'TLSv1.3',
        ciphers: TLS_CIPHERS,
        highWaterMark: SOCKET_HIGH_WATER_MARK,
        checkServerIdentity: (name, cert) => {
          const usual = checkServerIdentity(name, cert);
          if (usual !== undefined) return usual;
          const cn = (cert.subject as { CN?: unknown } | undefined)?.CN;
          const expected = this.options.expectedName;
          return expected === undefined || cn === expected ? undefined : new Error(`the peer's certificate is '${String(cn)}', not '${expected}', the identity node ${this.id} joined with: certificate refused`);
        },
      };
      const socket = connect(options);
      const timer = setTimeout(() => socket.destroy(new Error('connect timed out')), this.options.connectTimeoutMs ?? 15_000);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.setNoDelay(true);
        const connection = new Connection(socket, this.id);
        connection.greeted(this.options.connectTimeoutMs ?? 15_000).then(() => resolve(connection), reject);
      });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(new DroverError('DROVER_TLS_CONNECT_FAILED', `cannot connect to ${this.id} at ${host}:${port}: ${err.message}`, {
          retryable: !/certificate|self.signed|verify|alert/i.test(err.message),
          detail: { host, port },
          cause: err,
        }));
      };
      socket.once('error', onError);
    });
  }
}

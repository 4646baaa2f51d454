/**
 * The receiving agent's transfer endpoint: mutual TLS (clients must hold a certificate
 * signed by the cluster CA), one connection per replication step, served from the agent's
 * own LocalPeer (its ZfsStore, its per-dataset lock). `zfs receive` runs here and its
 * verdict travels back to the sender.
 *
 * One port takes both kinds of connection: a TLS handshake (first byte 0x16) goes to the
 * TLS server; anything else must be a native pump's hello for a channel that a TLS
 * connection opened (native-pump.ts), or it is dropped.
 */
import { randomBytes } from 'node:crypto';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { createServer, type Server, type TlsOptions, type TLSSocket } from 'node:tls';
import { DroverError, toDroverError } from '#common/errors.ts';
import { silentLogger, type Logger } from '#common/log.ts';
import type { LocalPeer } from './local-peer.ts';
import { HELLO_BYTES, NATIVE_CHANNEL, channelSecrets, findNativePump, helloChannel, helloMatches, startReceivePump, type PumpProcess } from './native-pump.ts';
import { BUFFER_BYTES } from './pump.ts';
import type { TlsIdentity } from './tls-certs.ts';
import { FrameDecoder, encodeMessage } from './tls-frames.ts';
import { Request, toWire } from './tls-protocol.ts';
import type { PeerStep, ReceiveSink } from './types.ts';

export const TLS_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
/** Socket buffers for throughput: bigger reads and writes, fewer wake-ups. */
export const SOCKET_HIGH_WATER_MARK = 4 * 1024 * 1024;

export interface TransferServerOptions {
  peer: LocalPeer;
  identity: TlsIdentity;
  host: string;
  /** 0 picks a free port. */
  port: number;
  log?: Logger;
  /** The native data pump; null offers no data channel. Default: the built one, if there is one. */
  pump?: string | null;
  /** How long an opened data channel waits for the sender's connection; default 15 s. */
  channelWaitMs?: number;
  /** A receiving pump that moves no byte for this long is stopped; default 60 s. */
  stallMs?: number;
}

/** A data channel opened by a TLS connection, waiting for the sender pump's connection. */
interface PendingChannel {
  hello: Buffer;
  attach(connection: Socket): void;
}

/** A connection must say what it is within this long. */
const FIRST_BYTES_MS = 15_000;
/** Connections that have not yet said what they are; more are refused at once. */
const MAX_UNROUTED = 128;

export class TransferServer {
  private readonly server: NetServer;
  private readonly tlsServer: Server;
  private readonly sockets = new Set<Socket>();
  private readonly channels = new Map<string, PendingChannel>();
  private readonly pumps = new Set<PumpProcess>();
  /** zfs receive inputs fed by a data channel: no data frames may reach them. */
  private readonly nativeSinks = new WeakSet<object>();
  private unrouted = 0;
  private readonly log: Logger;
  private readonly pump: string | null;

  constructor(private readonly options: TransferServerOptions) {
    this.log = (options.log ?? silentLogger()).child({ subsystem: 'transfer-server' });
    this.pump = options.pump === undefined ? findNativePump() : options.pump;
    const tlsOptions: TlsOptions & { highWaterMark: number } = {
      key: options.identity.key,
      cert: options.identity.cert,
      ca: options.identity.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
      ciphers: TLS_CIPHERS,
      highWaterMark: SOCKET_HIGH_WATER_MARK,
    };
    this.tlsServer = createServer(tlsOptions, (socket) => this.serve(socket));
    this.tlsServer.on('tlsClientError', (err) => this.log.warn({ err }, 'transfer client refused'));
    this.server = createNetServer((socket) => this.route(socket));
  }

  /** True when senders are offered the native data channel. */
  get native(): boolean {
    return this.pump !== null;
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    for (const pump of this.pumps) pump.kill(new DroverError('DROVER_TRANSFER_INTERRUPTED', 'the transfer server closed', { retryable: true }));
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Reads a connection's first bytes: a TLS handshake, or a data connection's hello. */
  private route(socket: Socket): void {
    socket.on('error', () => {});
    if (this.unrouted >= MAX_UNROUTED) {
      this.log.warn({ remote: socket.remoteAddress, unrouted: this.unrouted }, 'too many connections that have not said what they are: refused');
      socket.destroy();
      return;
    }
    this.unrouted++;
    let routed = false;
    const settle = (): void => {
      if (routed) return;
      routed = true;
      this.unrouted--;
    };
    this.sockets.add(socket);
    socket.on('close', () => {
      settle();
      this.sockets.delete(socket);
    });
    const timer = setTimeout(() => socket.destroy(), FIRST_BYTES_MS);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      if (head.length === 0 && chunk[0] === 0x16) {
        clearTimeout(timer);
        settle();
        socket.off('data', onData);
        socket.pause();
        socket.unshift(chunk);
        this.tlsServer.emit('connection', socket);
        return;
      }
      head = Buffer.concat([head, chunk]);
      if (head.length < HELLO_BYTES) return;
      clearTimeout(timer);
      settle();
      socket.off('data', onData);
      // The sender's pump waits for our acknowledgement: nothing may follow its hello yet.
      socket.pause();
      const id = helloChannel(head);
      const channel = id === null ? undefined : this.channels.get(id);
      if (head.length !== HELLO_BYTES || !channel || !helloMatches(head, channel.hello)) {
        this.log.warn({ remote: socket.remoteAddress }, 'a data connection with no valid hello was dropped');
        socket.destroy();
        return;
      }
      this.channels.delete(id!);
      channel.attach(socket);
    };
    socket.on('data', onData);
  }

  /**
   * Opens a data channel for `sink`: the sender's pump connects with the channel's hello,
   * and our pump writes the authenticated stream into zfs receive's stdin.
   */
  private openChannel(socket: TLSSocket, sink: ReceiveSink, log: Logger): { id: string; sink: ReceiveSink } {
    const pumpPath = this.pump!;
    const channel = randomBytes(16);
    const id = channel.toString('hex');
    const { key, hello } = channelSecrets(socket, channel);
    const waitMs = this.options.channelWaitMs ?? 15_000;
    let pump: PumpProcess | null = null;
    let fail: (err: DroverError) => void = () => {};
    const arrived = new Promise<PumpProcess>((resolve, reject) => {
      const timer = setTimeout(() => fail(new DroverError('DROVER_TRANSFER_CONNECT_FAILED', `the sender's data connection did not arrive within ${waitMs} ms`, { retryable: true })), waitMs);
      fail = (err) => {
        clearTimeout(timer);
        this.channels.delete(id);
        reject(err);
      };
      this.channels.set(id, {
        hello,
        attach: (connection) => {
          clearTimeout(timer);
          try {
            // A sending host that vanishes without a reset is noticed (the pump blocks in read).
            connection.setKeepAlive(true, 10_000);
            pump = startReceivePump(pumpPath, connection, sink.input, key);
          } catch (err) {
            connection.destroy();
            fail(toDroverError(err));
            return;
          }
          const started = pump;
          this.pumps.add(started);
          void started.done().catch(() => {}).finally(() => this.pumps.delete(started));
          // The pump has its own copies; ours would keep zfs from seeing the stream's end.
          connection.destroy();
          sink.input.destroy();
          log.debug({ pid: started.pid }, 'data channel attached');
          resolve(started);
        },
      });
    });
    const pumped = arrived.then((p) => p.watch({ stallMs: this.options.stallMs ?? 60_000 }));
    // Whichever fails first stops the other; a permanent zfs verdict ("out of space") beats
    // the pump's broken pipe it caused.
    let first: DroverError | null = null;
    const note = <T>(p: Promise<T>): Promise<T> =>
      p.catch((err: unknown) => {
        const e = toDroverError(err);
        first ??= e;
        throw e;
      });
    const zfs = note(sink.done);
    const data = note(pumped);
    zfs.catch((err: DroverError) => (pump ? pump.kill(err) : fail(err)));
    data.catch((err: DroverError) => sink.abort(err));
    const done = Promise.allSettled([zfs, data]).then(([z]) => {
      if (z.status === 'rejected' && !(z.reason as DroverError).retryable) throw z.reason;
      if (first) throw first;
      return z.status === 'fulfilled' ? z.value : null;
    });
    done.catch(() => {});
    this.nativeSinks.add(sink.input);
    return {
      id,
      sink: {
        input: sink.input,
        done,
        abort: (reason) => {
          const err = reason instanceof DroverError ? reason : new DroverError('DROVER_TRANSFER_INTERRUPTED', reason.message, { retryable: true });
          if (pump) pump.kill(err);
          else fail(err);
          sink.abort(reason);
        },
      },
    };
  }

  private serve(socket: TLSSocket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const client = socket.getPeerCertificate()?.subject?.CN ?? 'unknown';
    const log = this.log.child({ client });
    let step: PeerStep | null = null;
    let sink: ReceiveSink | null = null;
    let chain = Promise.resolve();
    let corked = false;
    const send = (message: unknown): void => {
      if (!socket.destroyed) socket.write(encodeMessage(message));
    };
    const fail = (err: unknown): void => {
      log.warn({ err: toDroverError(err) }, 'transfer connection failed');
      socket.destroy();
    };

    const handle = async (raw: unknown): Promise<void> => {
      const parsed = Request.safeParse(raw);
      if (!parsed.success) throw new DroverError('DROVER_TRANSFER_PROTOCOL', 'bad request');
      const request = parsed.data;
      try {
        const value = await this.answer(request, step, (s) => (step = s), (s) => (sink = s), send, socket, log);
        if (request.op !== 'receive') send({ id: request.id, ok: true, value: value ?? null });
      } catch (err) {
        send({ id: request.id, ok: false, error: toWire(toDroverError(err)) });
      }
    };

    const decoder = new FrameDecoder({
      message: (message) => {
        chain = chain.then(() => handle(message)).catch(fail);
      },
      data: (chunk) => {
        const input = sink?.input;
        if (!input) return fail(new DroverError('DROVER_TRANSFER_PROTOCOL', 'data before receive'));
        if (this.nativeSinks.has(input)) return fail(new DroverError('DROVER_TRANSFER_PROTOCOL', 'data frames on a receive that has a data channel'));
        // TLS hands over 16 KiB records; those of one socket read go to zfs in one writev.
        if (!corked) {
          corked = true;
          input.cork();
          setImmediate(() => {
            corked = false;
            if (!input.destroyed) input.uncork();
          });
        }
        if (!input.write(chunk) && input.writableLength >= BUFFER_BYTES) {
          socket.pause();
          input.once('drain', () => socket.resume());
        }
      },
      dataEnd: () => sink?.input.end(),
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        fail(err);
      }
    });
    socket.on('error', () => {});
    // The greeting tells the client its certificate was accepted: in TLS 1.3 the client's
    // handshake completes before the server has checked the client certificate.
    send({ id: 0, ok: true, value: 'hello' });
    socket.on('close', () => {
      this.sockets.delete(socket);
      // A cut connection kills a running receive (the target stays at its last snapshot) and unlocks.
      sink?.abort(new DroverError('DROVER_TRANSFER_INTERRUPTED', 'connection closed', { retryable: true }));
      void chain.finally(() => step?.end());
    });
  }

  private async answer(
    request: Request,
    step: PeerStep | null,
    setStep: (s: PeerStep | null) => void,
    setSink: (s: ReceiveSink | null) => void,
    send: (message: unknown) => void,
    socket: TLSSocket,
    log: Logger,
  ): Promise<unknown> {
    if (request.op === 'features') return this.options.peer.features();
    if (request.op === 'begin') {
      if (step) throw new DroverError('DROVER_TRANSFER_PROTOCOL', 'a step is already open on this connection');
      setStep(await this.options.peer.beginStep(request.datasetId, { waitMs: request.waitMs }));
      return { dataChannels: this.pump ? [NATIVE_CHANNEL] : [], getState: true };
    }
    if (!step) throw new DroverError('DROVER_TRANSFER_PROTOCOL', `${request.op} before begin`);
    switch (request.op) {
      case 'getDataset': return step.getDataset();
      case 'listSnapshots': return step.listSnapshots();
      case 'getState': {
        if (step.state) return step.state();
        const [dataset, snapshots] = await Promise.all([step.getDataset(), step.listSnapshots()]);
        return { dataset, snapshots };
      }
      case 'hold': return step.hold(request.snapshot, request.tag);
      case 'release': return step.release(request.snapshot, request.tag);
      case 'rollback': return step.rollback(request.snapshot);
      case 'setAside': {
        if (!step.setAside) throw new DroverError('DROVER_TRANSFER_PROTOCOL', 'this receiver cannot set a copy aside');
        return step.setAside(request.generation);
      }
      case 'destroySnapshot': return step.destroySnapshot(request.snapshot);
      case 'resumeToken': return step.resumeToken();
      case 'abortResume': return step.abortResume();
      case 'end': {
        await step.end();
        setStep(null);
        return null;
      }
      case 'receive': {
        let sink = step.receive({ resumable: request.resumable, full: request.full });
        if (request.dataChannel === NATIVE_CHANNEL && this.pump) {
          const opened = this.openChannel(socket, sink, log);
          sink = opened.sink;
          setSink(sink);
          send({ id: request.id, ok: true, value: { channel: opened.id } });
        } else {
          setSink(sink);
          send({ id: request.id, ok: true, value: 'ready' });
        }
        sink.done.then(
          (received) => send({ id: request.id, ok: true, event: 'received', value: received }),
          (err: unknown) => send({ id: request.id, ok: false, event: 'received', error: toWire(toDroverError(err)) }),
        ).finally(() => setSink(null));
        return null;
      }
    }
  }
}

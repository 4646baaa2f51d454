/**
 * The receiving agent's transfer endpoint: mutual TLS (clients must hold a certificate
 * signed by the cluster CA), one connection per replication step, served from the agent's
 * own LocalPeer (its ZfsStore, its per-dataset lock). `zfs receive` runs here and its
 * verdict travels back to the sender.
 */
import { createServer, type Server, type TlsOptions, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { DroverError, toDroverError } from '#common/errors.ts';
import { silentLogger, type Logger } from '#common/log.ts';
import type { LocalPeer } from './local-peer.ts';
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
}

export class TransferServer {
  private readonly server: Server;
  private readonly sockets = new Set<TLSSocket>();
  private readonly log: Logger;

  constructor(private readonly options: TransferServerOptions) {
    this.log = (options.log ?? silentLogger()).child({ subsystem: 'transfer-server' });
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
    this.server = createServer(tlsOptions, (socket) => this.serve(socket));
    this.server.on('tlsClientError', (err) => this.log.warn({ err }, 'transfer client refused'));
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
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
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
        const value = await this.answer(request, step, (s) => (step = s), (s) => (sink = s), send);
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
  ): Promise<unknown> {
    if (request.op === 'features') return this.options.peer.features();
    if (request.op === 'begin') {
      if (step) throw new DroverError('DROVER_TRANSFER_PROTOCOL', 'a step is already open on this connection');
      setStep(await this.options.peer.beginStep(request.datasetId, { waitMs: request.waitMs }));
      return null;
    }
    if (!step) throw new DroverError('DROVER_TRANSFER_PROTOCOL', `${request.op} before begin`);
    switch (request.op) {
      case 'getDataset': return step.getDataset();
      case 'listSnapshots': return step.listSnapshots();
      case 'hold': return step.hold(request.snapshot, request.tag);
      case 'release': return step.release(request.snapshot, request.tag);
      case 'rollback': return step.rollback(request.snapshot);
      case 'destroySnapshot': return step.destroySnapshot(request.snapshot);
      case 'resumeToken': return step.resumeToken();
      case 'abortResume': return step.abortResume();
      case 'end': {
        await step.end();
        setStep(null);
        return null;
      }
      case 'receive': {
        const sink = step.receive({ resumable: request.resumable, full: request.full });
        setSink(sink);
        send({ id: request.id, ok: true, value: 'ready' });
        sink.done.then(
          () => send({ id: request.id, ok: true, event: 'received' }),
          (err: unknown) => send({ id: request.id, ok: false, event: 'received', error: toWire(toDroverError(err)) }),
        ).finally(() => setSink(null));
        return null;
      }
    }
  }
}

/**
 * The tls transport's native data path: `native/drover-pump` (C, OpenSSL) carries the zfs
 * stream between the agents on a second TCP connection to the receiver's transfer port,
 * so the bytes never pass through either agent's JavaScript. The TLS connection stays the
 * control channel: it authenticates both agents, and its exporter gives this stream's key.
 *
 *   sender:   zfs send ─fd→ drover-pump send ══AES-GCM frames══▶ drover-pump recv ─fd→ zfs receive
 *
 * The data connection opens with a hello `magic ‖ channel ‖ HMAC(helloKey, magic ‖ channel)`;
 * the receiver matches it to the TLS connection that asked for the channel. Key and hello key
 * come from `exportKeyingMaterial` with the channel as context: only the two ends of that TLS
 * session know them. The secrets reach the pumps on fd 3, never on a command line.
 * native/README.md has the frame format.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { DroverError, type ErrorCode } from '#common/errors.ts';

/** The name both ends announce for this data path. */
export const NATIVE_CHANNEL = 'native-v1';
export const HELLO_MAGIC = Buffer.from('DRVRDAT1', 'latin1');
export const HELLO_BYTES = 56;
const CHANNEL_BYTES = 16;
const KEY_BYTES = 16;
const EXPORTER_LABEL = 'EXPORTER-drover-data-v1';

/** Where `make -C native` puts the pump. */
export const DEFAULT_PUMP_PATH = fileURLToPath(new URL('../../native/build/drover-pump', import.meta.url));

/** The pump's path when it is built and executable, else null (the tls transport then streams in-process). */
export function findNativePump(path: string = DEFAULT_PUMP_PATH): string | null {
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    return null;
  }
}

export interface ChannelSecrets {
  /** AES-128-GCM key of the stream. */
  key: Buffer;
  /** What the sender's pump writes first on the data connection. */
  hello: Buffer;
}

/** Both ends derive the same secrets from their TLS session and the receiver's channel id. */
export function channelSecrets(socket: TLSSocket, channel: Buffer): ChannelSecrets {
  if (channel.length !== CHANNEL_BYTES) throw new DroverError('DROVER_TRANSFER_PROTOCOL', 'a data channel id is 16 bytes');
  const material = socket.exportKeyingMaterial(KEY_BYTES + 32, EXPORTER_LABEL, channel);
  const key = material.subarray(0, KEY_BYTES);
  const helloKey = material.subarray(KEY_BYTES);
  const prefix = Buffer.concat([HELLO_MAGIC, channel]);
  const hello = Buffer.concat([prefix, createHmac('sha256', helloKey).update(prefix).digest()]);
  return { key: Buffer.from(key), hello };
}

/** The channel id a hello names, or null when it is not a drover hello. */
export function helloChannel(hello: Buffer): string | null {
  if (hello.length !== HELLO_BYTES || !hello.subarray(0, HELLO_MAGIC.length).equals(HELLO_MAGIC)) return null;
  return hello.subarray(HELLO_MAGIC.length, HELLO_MAGIC.length + CHANNEL_BYTES).toString('hex');
}

export function helloMatches(received: Buffer, expected: Buffer): boolean {
  return received.length === expected.length && timingSafeEqual(received, expected);
}

// The pump's exit statuses (native/drover-pump.c).
const EXIT: Record<number, { code: ErrorCode; retryable: boolean; what: string }> = {
  64: { code: 'DROVER_TRANSFER_PROTOCOL', retryable: false, what: 'was started wrongly' },
  65: { code: 'DROVER_TRANSFER_INTERRUPTED', retryable: true, what: 'could not read its input' },
  66: { code: 'DROVER_TRANSFER_INTERRUPTED', retryable: true, what: 'could not write its output' },
  67: { code: 'DROVER_TRANSFER_CONNECT_FAILED', retryable: true, what: 'could not open the data connection' },
  68: { code: 'DROVER_TRANSFER_INTEGRITY', retryable: true, what: 'received a frame that failed authentication' },
  69: { code: 'DROVER_TRANSFER_INTERRUPTED', retryable: true, what: 'saw the stream end before its last frame' },
  70: { code: 'DROVER_TRANSFER_PROTOCOL', retryable: true, what: 'received a malformed frame' },
  71: { code: 'DROVER_TRANSFER_PROTOCOL', retryable: false, what: 'hit an OpenSSL failure' },
};

export interface PumpWatch {
  /** No reported byte for this long → DROVER_TRANSFER_STALLED (retryable); the pump is killed. */
  stallMs: number;
  onBytes?: (bytes: number, elapsedMs: number) => void;
  signal?: AbortSignal;
}

/** One running pump: its progress, its verdict. */
export class PumpProcess {
  /** Bytes of the zfs stream the pump has passed on (its last report). */
  bytes = 0;
  /** The pump's CPU, once it has finished the stream. */
  cpuMs: { user: number; system: number } | null = null;
  private readonly child: ChildProcess;
  /** null when the spawn failed (EMFILE, ENOENT): `done` then rejects. */
  private readonly control: Socket | null;
  private readonly exited: Promise<number>;
  private readonly listeners = new Set<(bytes: number) => void>();
  private stderr = '';
  private killedWith: DroverError | null = null;

  constructor(path: string, args: string[], stdio: { stdin: Readable | Writable | 'pipe'; stdout: Readable | Writable | 'ignore' }) {
    const started = Date.now();
    // Argument arrays only; the secrets go over fd 3.
    this.child = spawn(path, args, { stdio: [stdio.stdin, stdio.stdout, 'pipe', 'pipe'], env: { LC_ALL: 'C' } });
    // A spawn that fails (out of descriptors, say) reports it later with 'error' and has no stdio.
    this.control = (this.child.stdio?.[3] as Socket | undefined) ?? null;
    this.control?.on('error', () => {});
    let line = '';
    this.control?.setEncoding('latin1');
    this.control?.on('data', (chunk: string) => {
      line += chunk;
      let nl: number;
      while ((nl = line.indexOf('\n')) >= 0) {
        // "P <bytes>" while running; "E <bytes> <user µs> <system µs>" at the end.
        const report = /^(?:P (\d+)|E (\d+) (\d+) (\d+))$/.exec(line.slice(0, nl));
        line = line.slice(nl + 1);
        if (!report) continue;
        this.bytes = Number(report[1] ?? report[2]);
        if (report[2] !== undefined) this.cpuMs = { user: Number(report[3]) / 1000, system: Number(report[4]) / 1000 };
        for (const listener of this.listeners) listener(this.bytes);
      }
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      if (this.stderr.length < 4096) this.stderr += chunk;
    });
    this.exited = new Promise((resolve, reject) => {
      this.child.once('error', (err) =>
        reject(new DroverError('DROVER_COMMAND_FAILED', `cannot run ${path}: ${err.message}`, { detail: { file: path }, cause: err })),
      );
      this.child.once('close', (status, signal) => {
        if (status === 0) return resolve(this.bytes);
        if (this.killedWith) return reject(this.killedWith);
        const known = status === null ? undefined : EXIT[status];
        const why = this.stderr.trim() || (signal ? `killed by ${signal}` : `exit status ${status}`);
        reject(
          new DroverError(known?.code ?? 'DROVER_TRANSFER_INTERRUPTED', `the data pump ${known?.what ?? 'failed'}: ${why}`, {
            retryable: known?.retryable ?? true,
            detail: { exitCode: status, signal, elapsedMs: Date.now() - started },
          }),
        );
      });
    });
    this.exited.catch(() => {});
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The pump's stdin when it was started with 'pipe' (the sender: `zfs send` writes there). */
  get stdin(): Writable | null {
    return this.child.stdin;
  }

  /** Hands the pump its secrets (it waits for them before it touches the network). */
  give(secret: Buffer): void {
    this.control?.write(secret);
  }

  /** Resolves with the byte count when the pump exited 0. */
  done(): Promise<number> {
    return this.exited;
  }

  /** Like `done`, with progress, a stall watchdog and an abort signal. */
  watch(options: PumpWatch): Promise<number> {
    const started = Date.now();
    let lastByteAt = started;
    let lastReport = 0;
    const onBytes = (bytes: number): void => {
      lastByteAt = Date.now();
      if (options.onBytes && lastByteAt - lastReport >= 250) {
        lastReport = lastByteAt;
        options.onBytes(bytes, lastByteAt - started);
      }
    };
    this.listeners.add(onBytes);
    const watchdog = setInterval(() => {
      const idle = Date.now() - lastByteAt;
      if (idle >= options.stallMs) {
        this.kill(new DroverError('DROVER_TRANSFER_STALLED', `no byte moved for ${Math.round(idle / 1000)} s`, {
          retryable: true,
          detail: { bytes: this.bytes, stallMs: options.stallMs },
        }));
      }
    }, Math.min(1000, Math.max(50, options.stallMs / 4)));
    watchdog.unref();
    const onAbort = (): void => this.kill(new DroverError('DROVER_TRANSFER_ABORTED', 'transfer aborted', { cause: options.signal?.reason }));
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    return this.exited
      .then((bytes) => {
        options.onBytes?.(bytes, Date.now() - started);
        return bytes;
      })
      .finally(() => {
        clearInterval(watchdog);
        this.listeners.delete(onBytes);
        options.signal?.removeEventListener('abort', onAbort);
      });
  }

  /** Stops the pump; `done` rejects with `reason`. */
  kill(reason: DroverError): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.killedWith ??= reason;
    this.child.kill('SIGKILL');
  }
}

/**
 * The sending pump: started before `zfs send` (which then writes into `stdin`), it waits
 * on fd 3 for the key and hello, then connects to the receiver itself.
 */
export function startSendPump(path: string, target: { host: string; port: number; timeoutMs: number }): PumpProcess {
  return new PumpProcess(path, ['send', target.host, String(target.port), String(target.timeoutMs)], { stdin: 'pipe', stdout: 'ignore' });
}

/**
 * The receiving pump on an accepted data connection (past its hello): it acknowledges, then
 * writes the authenticated stream into `output` (zfs receive's stdin). Both streams are
 * handed over as descriptors; this process must not read or write them afterwards.
 */
export function startReceivePump(path: string, connection: Socket, output: Writable, key: Buffer): PumpProcess {
  const pump = new PumpProcess(path, ['recv'], { stdin: connection, stdout: output });
  pump.give(key);
  return pump;
}

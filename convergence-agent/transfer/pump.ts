/**
 * Moves a stream from a Readable (`zfs send`'s stdout, a socket) to a Writable (a transport,
 * `zfs receive`'s stdin) with backpressure, a byte counter, progress callbacks and a stall
 * watchdog. Chunks are passed on as they are: no copies, no Transform in between.
 */
import type { Readable, Writable } from 'node:stream';
import { DroverError } from '#common/errors.ts';

export interface PumpOptions {
  /** No byte for this long → DROVER_TRANSFER_STALLED (retryable). */
  stallMs: number;
  /** Called with the running byte count, at most every `progressEveryMs` and once at the end. */
  onBytes?: (bytes: number, elapsedMs: number) => void;
  progressEveryMs?: number;
  signal?: AbortSignal;
  /** End `to` when `from` ends (default true). */
  end?: boolean;
}

/** How much a pump lets pile up in the destination's buffer before pausing the source. */
export const BUFFER_BYTES = 8 * 1024 * 1024;

/** Resolves with the byte count once `from` ended and everything was handed to `to`. */
export function pump(from: Readable, to: Writable, options: PumpOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let bytes = 0;
    let lastByteAt = started;
    let lastReport = 0;
    let finished = false;
    const every = options.progressEveryMs ?? 250;

    const report = (force: boolean): void => {
      const now = Date.now();
      if (options.onBytes && (force || now - lastReport >= every)) {
        lastReport = now;
        options.onBytes(bytes, now - started);
      }
    };
    const finish = (err: Error | null): void => {
      if (finished) return;
      finished = true;
      clearInterval(watchdog);
      from.off('data', onData);
      from.off('end', onEnd);
      from.off('error', onError);
      from.off('close', onClose);
      to.off('drain', onDrain);
      to.off('error', onError);
      to.off('close', onSinkClose);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) {
        from.pause();
        reject(err);
      } else {
        report(true);
        resolve(bytes);
      }
    };

    // Chunks that arrive in one turn of the event loop leave in one writev (cork until the
    // next turn): fewer syscalls and, for tls, fewer and larger records.
    let corked = false;
    const uncork = (): void => {
      corked = false;
      if (!to.destroyed) to.uncork();
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      lastByteAt = Date.now();
      if (!corked) {
        corked = true;
        to.cork();
        setImmediate(uncork);
      }
      // Pipes and sockets have small high-water marks (16 KiB); pausing at each `false`
      // makes sender and receiver wait for each other. Buffer up to BUFFER_BYTES instead.
      if (!to.write(chunk) && to.writableLength >= BUFFER_BYTES) from.pause();
      report(false);
    };
    const onDrain = (): void => {
      lastByteAt = Date.now();
      from.resume();
    };
    const onEnd = (): void => {
      if (options.end === false) return finish(null);
      to.end(() => finish(null));
    };
    const onError = (err: Error): void =>
      finish(new DroverError('DROVER_TRANSFER_INTERRUPTED', `stream failed: ${err.message}`, { retryable: true, cause: err }));
    const onClose = (): void => {
      if (!from.readableEnded) onError(new Error('source closed before its end'));
    };
    const onSinkClose = (): void => {
      if (!to.writableFinished) onError(new Error('destination closed before the end of the stream'));
    };
    const onAbort = (): void =>
      finish(new DroverError('DROVER_TRANSFER_ABORTED', 'transfer aborted', { cause: options.signal?.reason }));

    const watchdog = setInterval(() => {
      // Waiting on a full destination counts as a stall too: no byte moved.
      const idle = Date.now() - lastByteAt;
      if (idle >= options.stallMs) {
        finish(
          new DroverError('DROVER_TRANSFER_STALLED', `no byte moved for ${Math.round(idle / 1000)} s`, {
            retryable: true,
            detail: { bytes, stallMs: options.stallMs },
          }),
        );
      }
    }, Math.min(1000, Math.max(50, options.stallMs / 4)));
    watchdog.unref();

    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    from.on('data', onData);
    from.on('end', onEnd);
    from.on('error', onError);
    from.on('close', onClose);
    to.on('drain', onDrain);
    to.on('error', onError);
    to.on('close', onSinkClose);
    from.resume();
  });
}

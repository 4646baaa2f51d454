/**
 * One stream: `zfs send` → pump → transport → `zfs receive`. Every exit status is checked
 * (send, transport, receive); the first failure stops the others, and the error reported is
 * the most telling one (a receiver's "out of space" beats the sender's "Broken pipe" it
 * caused).
 */
import { DroverError, isDroverError, toDroverError } from '#common/errors.ts';
import type { ZfsStreamProcess } from '../zfs/zfs-stream.ts';
import { pump } from './pump.ts';
import type { ReceiveSink } from './types.ts';

export interface StreamStepOptions {
  send: ZfsStreamProcess;
  sink: ReceiveSink;
  stallMs: number;
  onBytes?: (bytes: number, elapsedMs: number) => void;
  signal?: AbortSignal;
}

// Lower is more telling. Permanent zfs verdicts first, then our own watchdog and abort,
// then the echoes of a cut stream.
function rank(err: DroverError): number {
  if (err.code === 'DROVER_TRANSFER_ABORTED') return 0;
  if (err.code.startsWith('DROVER_ZFS_') && !err.retryable) return 1;
  if (err.code === 'DROVER_TRANSFER_STALLED') return 2;
  if (err.code.startsWith('DROVER_ZFS_') && err.code !== 'DROVER_ZFS_STREAM_INTERRUPTED') return 3;
  if (err.code === 'DROVER_TRANSFER_INTERRUPTED') return 4;
  return 5;
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Resolves with the bytes streamed once send and receive both exited 0. */
export async function streamStep(options: StreamStepOptions): Promise<number> {
  const { send, sink } = options;
  let stopped = false;
  const stop = (reason: Error): void => {
    if (stopped) return;
    stopped = true;
    send.kill('SIGTERM');
    sink.abort(reason);
  };
  const watch = <T>(p: Promise<T>): Promise<T> =>
    p.catch((err: unknown) => {
      const e = toDroverError(err);
      stop(e);
      throw e;
    });

  const pumped = watch(pump(send.output!, sink.input, { stallMs: options.stallMs, onBytes: options.onBytes, signal: options.signal }));
  const sent = watch(send.done);
  // The receiver finishes after the last byte: give it its own bound once the stream ended.
  const received = watch(
    pumped.then(
      () => withTimeout(sink.done, Math.max(options.stallMs, 30_000), () => stalled('the receiver did not finish after the stream ended')),
      () => sink.done,
    ),
  );

  const results = await withTimeout(Promise.allSettled([pumped, sent, received]), Math.max(options.stallMs, 30_000) * 2, () =>
    stalled('the transfer did not settle after a failure'),
  ).catch((err: DroverError) => {
    stop(err);
    return [{ status: 'rejected' as const, reason: err }];
  });

  const errors = results.flatMap((r) => (r.status === 'rejected' ? [toDroverError(r.reason)] : []));
  if (errors.length === 0) return (results[0] as PromiseFulfilledResult<number>).value;
  errors.sort((a, b) => rank(a) - rank(b));
  const chosen = errors[0]!;
  if (errors.length > 1) chosen.detail.alsoFailed = errors.slice(1).map((e) => `${e.code}: ${e.message}`);
  throw chosen;
}

function stalled(message: string): DroverError {
  return new DroverError('DROVER_TRANSFER_STALLED', message, { retryable: true });
}

/** True for errors a whole-step retry may cure. */
export function isRetryable(err: unknown): boolean {
  return isDroverError(err) && err.retryable;
}

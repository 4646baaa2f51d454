/**
 * One stream: `zfs send` → pump → transport → `zfs receive`. Every exit status is checked
 * (send, transport, receive); the first failure stops the others, and the error reported is
 * the most telling one (a receiver's "out of space" beats the sender's "Broken pipe" it
 * caused).
 */
import { DroverError, isDroverError, toDroverError } from '#common/errors.ts';
import type { SendRequest, ZfsStreamProcess } from '../zfs/zfs-stream.ts';
import type { ZfsStore } from '../zfs/zfs.ts';
import { pump } from './pump.ts';
import type { ReceiveSink } from './types.ts';

export interface StreamStepOptions {
  send: ZfsStreamProcess;
  sink: ReceiveSink;
  stallMs: number;
  onBytes?: (bytes: number, elapsedMs: number) => void;
  signal?: AbortSignal;
  /** How long the parts of a stopped stream get to report their exit status; default 10 s. */
  graceMs?: number;
}

/** How long the parts of a stopped stream get to report their exit status. */
const STOP_GRACE_MS = 10_000;

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

/**
 * Starts `zfs send` for `sink`: into the sink's descriptor when the sink is direct (the
 * stream then bypasses this process), else into a pipe that `streamStep` pumps. A send that
 * cannot start aborts the sink.
 */
export function startSend(store: Pick<ZfsStore, 'send'>, sink: ReceiveSink, request: Omit<SendRequest, 'pool' | 'into'>): ZfsStreamProcess {
  let send: ZfsStreamProcess;
  try {
    send = store.send({ ...request, ...(sink.direct ? { into: sink.input } : {}) });
  } catch (err) {
    sink.done.catch(() => {}); // nobody streams, so nobody else waits for its verdict
    sink.abort(toDroverError(err));
    throw err;
  }
  // zfs has its own copy of the pump's stdin; ours would keep the pump from seeing the end.
  if (sink.direct) sink.input.destroy();
  return send;
}

/** Resolves with the bytes streamed once send and receive both exited 0. */
export async function streamStep(options: StreamStepOptions): Promise<number> {
  const { send, sink } = options;
  let stopped = false;
  let trigger: DroverError | null = null;
  const stop = (reason: DroverError): void => {
    if (stopped) return;
    stopped = true;
    trigger = reason;
    // Closing our end of the pipe unblocks zfs (on zfs-fuse the daemon itself writes into
    // it and would wait forever for a reader); then the processes can exit.
    send.output?.destroy();
    send.kill('SIGTERM');
    sink.abort(reason);
  };
  const errors: DroverError[] = [];
  const watch = <T>(p: Promise<T>): Promise<T> =>
    p.catch((err: unknown) => {
      const e = toDroverError(err);
      errors.push(e);
      stop(e);
      throw e;
    });

  const watching = { stallMs: options.stallMs, onBytes: options.onBytes, signal: options.signal };
  // A direct sink moves the bytes outside this process and reports them; else we pump.
  const pumped = watch(sink.direct ? sink.direct.pumped(watching) : pump(send.output!, sink.input, watching));
  const sent = watch(send.done);
  // A receiver that fails mid-stream (a cut transport, a full pool) stops everything at
  // once; one that succeeds finishes after the last byte, within its own bound.
  const received = watch(
    Promise.race([
      sink.done.then(() => new Promise<void>(() => {})),
      pumped.then(
        () => withTimeout(sink.done, Math.max(options.stallMs, 30_000), () => stalled('the receiver did not finish after the stream ended')),
        () => sink.done,
      ),
    ]),
  );

  const settled = Promise.allSettled([pumped, sent, received]);
  const firstFailure = new Promise<void>((resolve) => {
    for (const p of [pumped, sent, received]) p.catch(() => resolve());
  });
  await Promise.race([settled, firstFailure]);
  if (errors.length === 0) {
    const [bytes] = await settled;
    if (bytes?.status === 'fulfilled' && errors.length === 0) return bytes.value;
  }
  // Once stopped, the other parts get a short grace to report their exit status, so a
  // receiver's verdict can be read; then we go on without them.
  await withTimeout(settled, options.graceMs ?? STOP_GRACE_MS, () => stalled('')).catch(() => {});

  // The failure that stopped the stream is the cause, unless a process gave a permanent
  // verdict (a receiver's "out of space" beats the broken pipe that reached us first).
  // The others are mostly echoes of our own stop (SIGTERM, EPIPE).
  const sorted = [...errors].sort((a, b) => rank(a) - rank(b));
  const chosen = rank(sorted[0]!) <= 1 || trigger === null ? sorted[0]! : (trigger as DroverError);
  const others = errors.filter((e) => e !== chosen);
  if (others.length > 0) chosen.detail.alsoFailed = others.map((e) => `${e.code}: ${e.message}`);
  throw chosen;
}

function stalled(message: string): DroverError {
  return new DroverError('DROVER_TRANSFER_STALLED', message, { retryable: true });
}

/** True for errors a whole-step retry may cure. */
export function isRetryable(err: unknown): boolean {
  return isDroverError(err) && err.retryable;
}

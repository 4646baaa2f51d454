/**
 * The framing of `drover-receive resident` (ssh-protocol.ts): one long-lived channel that
 * carries many receives, one after another. Pure; used by the sender (ssh-resident.ts) and by
 * drover-receive (../receive/resident.ts).
 *
 *   receiver → sender   `DROVER-RESIDENT 1` once, when it is ready for a first header
 *   sender → receiver   a header line (ssh-protocol.ts ReceiveHeader, `op: 'receive'` only)
 *   receiver → sender   `DROVER-READY` (the header passed every check, `zfs receive` started)
 *                       or a verdict line `{ok: false, …}` (refused: no stream follows)
 *   sender → receiver   the stream as frames: a 4-byte big-endian length, then that many
 *                       bytes; a frame of length 0 ends the stream
 *   receiver → sender   one verdict line, after the end frame, then the next header
 *
 * A sender that gives up on a stream closes the channel: the receiver ends `zfs receive`'s
 * input mid-stream (zfs discards a partial receive, as when a one-shot's channel is cut) and
 * exits. A receive that fails before its stream ends has the rest of its frames read and
 * dropped up to the end frame, so the channel stays in step for the next header.
 */
import { DroverError } from '#common/errors.ts';
import { MAX_LINE_BYTES } from './ssh-protocol.ts';

/** The receiver's first line: it speaks this framing (version 1). */
export const RESIDENT_HELLO = 'DROVER-RESIDENT 1';
/** The largest frame a sender writes and a receiver accepts. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** The header of one data frame (or, with `length` 0, the end frame). */
export function frameHeader(length: number): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(length, 0);
  return header;
}

export const END_FRAME: Buffer = frameHeader(0);

export interface FrameEvents {
  /** A header line (without its newline), read while no stream is open. */
  line(text: string): void;
  /** A frame's bytes, while a stream is open. */
  data(chunk: Buffer): void;
  /** The end frame of the open stream. */
  end(): void;
}

/**
 * Splits the receiver's input into header lines and stream frames. After each header line the
 * reader waits (`expectFrames()` or `expectLine()`, as the header was accepted or refused).
 * @throws DROVER_SSH_PROTOCOL on an over-long line or frame, or input while waiting
 */
export class FrameReader {
  private mode: 'line' | 'frames' | 'wait' = 'line';
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes left in the current frame's payload (frames mode); 0: a frame header comes next. */
  private left = 0;

  constructor(private readonly on: FrameEvents) {}

  /** The header was accepted: frames follow. */
  expectFrames(): void {
    this.mode = 'frames';
    this.left = 0;
    this.drain();
  }

  /** The header was refused (or the stream's verdict sent): the next header line follows. */
  expectLine(): void {
    this.mode = 'line';
    this.drain();
  }

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.drain();
  }

  /** Bytes received but not yet handed on (waiting for a decision, or a partial frame header/line). */
  get buffered(): number {
    return this.pending.length;
  }

  private drain(): void {
    while (this.pending.length > 0) {
      if (this.mode === 'wait') {
        if (this.pending.length > MAX_LINE_BYTES) throw new DroverError('DROVER_SSH_PROTOCOL', 'input before the answer to a header');
        return;
      }
      if (this.mode === 'line') {
        const nl = this.pending.indexOf(10);
        if (nl < 0) {
          if (this.pending.length > MAX_LINE_BYTES) throw new DroverError('DROVER_SSH_PROTOCOL', `a line longer than ${MAX_LINE_BYTES} bytes`);
          return;
        }
        const text = this.pending.subarray(0, nl).toString('utf8');
        this.pending = this.pending.subarray(nl + 1);
        this.mode = 'wait';
        this.on.line(text);
        continue;
      }
      if (this.left === 0) {
        if (this.pending.length < 4) return;
        const length = this.pending.readUInt32BE(0);
        this.pending = this.pending.subarray(4);
        if (length > MAX_FRAME_BYTES) throw new DroverError('DROVER_SSH_PROTOCOL', `a frame of ${length} bytes (at most ${MAX_FRAME_BYTES})`);
        if (length === 0) {
          this.mode = 'wait';
          this.on.end();
          continue;
        }
        this.left = length;
        continue;
      }
      const take = Math.min(this.left, this.pending.length);
      const piece = this.pending.subarray(0, take);
      this.pending = this.pending.subarray(take);
      this.left -= take;
      this.on.data(piece);
    }
  }
}

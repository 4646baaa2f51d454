/**
 * The tls transport's framing: `[type u8][length u32 BE][payload]`.
 *   1 message   a JSON object (requests, responses, the receive verdict); ≤ 1 MiB
 *   2 data      a piece of the zfs stream
 *   3 data-end  the zfs stream is complete
 * The decoder hands data payloads on as slices of the socket's buffers (no copy) and
 * never waits for a whole data frame. Pure.
 */
import { DroverError } from '#common/errors.ts';

export const FrameType = { message: 1, data: 2, dataEnd: 3 } as const;
const HEADER = 5;
const MAX_MESSAGE = 1024 * 1024;

function header(type: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER);
  h.writeUInt8(type, 0);
  h.writeUInt32BE(length, 1);
  return h;
}

export function encodeMessage(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  if (body.length > MAX_MESSAGE) throw new DroverError('DROVER_TRANSFER_PROTOCOL', 'message too large');
  return Buffer.concat([header(FrameType.message, body.length), body]);
}

export function dataHeader(length: number): Buffer {
  return header(FrameType.data, length);
}

export function dataEndFrame(): Buffer {
  return header(FrameType.dataEnd, 0);
}

export interface FrameHandlers {
  message(message: unknown): void;
  data(chunk: Buffer): void;
  dataEnd(): void;
}

function protocolError(message: string): DroverError {
  return new DroverError('DROVER_TRANSFER_PROTOCOL', message);
}

export class FrameDecoder {
  private head = Buffer.alloc(HEADER);
  private headFill = 0;
  private type = 0;
  private remaining = -1; // -1: reading a header
  private parts: Buffer[] = [];

  constructor(private readonly handlers: FrameHandlers) {}

  /** Feeds bytes from the socket. Throws DROVER_TRANSFER_PROTOCOL on garbage. */
  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining < 0) {
        const take = Math.min(HEADER - this.headFill, chunk.length - offset);
        chunk.copy(this.head, this.headFill, offset, offset + take);
        this.headFill += take;
        offset += take;
        if (this.headFill < HEADER) return;
        this.headFill = 0;
        this.type = this.head.readUInt8(0);
        this.remaining = this.head.readUInt32BE(1);
        if (this.type === FrameType.message && this.remaining > MAX_MESSAGE) throw protocolError('message frame too large');
        if (this.type !== FrameType.message && this.type !== FrameType.data && this.type !== FrameType.dataEnd) {
          throw protocolError(`unknown frame type ${this.type}`);
        }
        if (this.remaining === 0) this.complete();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - offset);
      const piece = chunk.subarray(offset, offset + take);
      offset += take;
      this.remaining -= take;
      if (this.type === FrameType.data) this.handlers.data(piece);
      else this.parts.push(piece);
      if (this.remaining === 0) this.complete();
    }
  }

  private complete(): void {
    const type = this.type;
    this.remaining = -1;
    if (type === FrameType.dataEnd) return this.handlers.dataEnd();
    if (type !== FrameType.message) return;
    const body = Buffer.concat(this.parts);
    this.parts = [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw protocolError('message frame is not JSON');
    }
    this.handlers.message(parsed);
  }
}

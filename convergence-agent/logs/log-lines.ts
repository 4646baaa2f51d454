/**
 * Docker's log output as lines (docs/DESIGN.md §27). A container without a TTY (drover's are
 * all so) has its stdout and stderr multiplexed in frames: an 8-byte header — the stream (1
 * stdout, 2 stderr), three zero bytes, the payload's length as a big-endian uint32 — then
 * the payload. Frames split lines anywhere, and chunks split frames anywhere: both are put
 * back together here. Pure.
 */

export interface LogLine {
  stream: 'stdout' | 'stderr';
  text: string;
}

/** A longer line is cut into pieces of this many bytes, so one endless line holds no more memory. */
export const MAX_LINE_BYTES = 16 * 1024;

export class LogLines {
  private pending: Buffer = Buffer.alloc(0);
  private readonly partial: Record<LogLine['stream'], Buffer[]> = { stdout: [], stderr: [] };

  /** `multiplexed`: Docker's framed form (no TTY); else the raw bytes are all stdout. */
  constructor(private readonly multiplexed: boolean) {}

  /** The lines the chunk completes. */
  push(chunk: Buffer): LogLine[] {
    if (!this.multiplexed) return this.split('stdout', chunk);
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: LogLine[] = [];
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      const kind = this.pending[0];
      const payload = this.pending.subarray(8, 8 + size);
      this.pending = this.pending.subarray(8 + size);
      // 0 is stdin (never sent for logs); anything else unknown is dropped with it.
      if (kind === 1) out.push(...this.split('stdout', payload));
      else if (kind === 2) out.push(...this.split('stderr', payload));
    }
    return out;
  }

  /** What is left at the end: an unfinished last line of each stream. */
  end(): LogLine[] {
    const out: LogLine[] = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream].length > 0) out.push({ stream, text: Buffer.concat(this.partial[stream]).toString('utf8') });
      this.partial[stream] = [];
    }
    return out;
  }

  private split(stream: LogLine['stream'], data: Buffer): LogLine[] {
    const out: LogLine[] = [];
    let from = 0;
    for (;;) {
      const newline = data.indexOf(0x0a, from);
      if (newline < 0) break;
      const line = Buffer.concat([...this.partial[stream], data.subarray(from, newline)]);
      this.partial[stream] = [];
      out.push({ stream, text: line.toString('utf8').replace(/\r$/, '') });
      from = newline + 1;
    }
    if (from < data.length) this.partial[stream].push(Buffer.from(data.subarray(from)));
    const held = this.partial[stream].reduce((n, b) => n + b.length, 0);
    if (held >= MAX_LINE_BYTES) {
      out.push({ stream, text: Buffer.concat(this.partial[stream]).toString('utf8') });
      this.partial[stream] = [];
    }
    return out;
  }
}

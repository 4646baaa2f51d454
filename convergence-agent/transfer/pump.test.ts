import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { pump } from './pump.ts';

describe('the stream pump', () => {
  it('moves every byte, counts them and ends the destination', async () => {
    const from = new PassThrough();
    const chunks: Buffer[] = [];
    const to = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) });
    const seen: number[] = [];
    const done = pump(from, to, { stallMs: 1000, progressEveryMs: 0, onBytes: (n) => seen.push(n) });
    from.write(Buffer.alloc(1000, 1));
    from.end(Buffer.alloc(24, 2));
    expect(await done).toBe(1024);
    expect(Buffer.concat(chunks).length).toBe(1024);
    expect(to.writableFinished).toBe(true);
    expect(seen.at(-1)).toBe(1024);
  });

  it('kills a stream that moves no byte for the stall time, as a retryable error', async () => {
    const from = new PassThrough();
    const to = new PassThrough();
    to.resume();
    const started = Date.now();
    await expect(pump(from, to, { stallMs: 200 })).rejects.toMatchObject({ code: 'DROVER_TRANSFER_STALLED', retryable: true });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('counts a destination that never drains as a stall', async () => {
    const from = new PassThrough();
    const to = new Writable({ highWaterMark: 1, write: () => {} }); // never calls back
    const done = pump(from, to, { stallMs: 200 });
    from.write(Buffer.alloc(64 << 20));
    await expect(done).rejects.toMatchObject({ code: 'DROVER_TRANSFER_STALLED' });
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    const done = pump(new PassThrough(), new PassThrough(), { stallMs: 10_000, signal: controller.signal });
    controller.abort();
    await expect(done).rejects.toMatchObject({ code: 'DROVER_TRANSFER_ABORTED' });
  });

  it('reports a source that breaks as an interrupted, retryable transfer', async () => {
    const from = new PassThrough();
    const done = pump(from, new PassThrough(), { stallMs: 10_000 });
    from.destroy(new Error('EPIPE'));
    await expect(done).rejects.toMatchObject({ code: 'DROVER_TRANSFER_INTERRUPTED', retryable: true });
  });
});

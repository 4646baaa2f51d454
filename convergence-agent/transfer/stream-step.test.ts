import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DroverError } from '#common/errors.ts';
import type { ZfsStreamProcess } from '../zfs/zfs-stream.ts';
import { streamStep } from './stream-step.ts';
import type { ReceivedSnapshot } from './received.ts';
import type { ReceiveSink } from './types.ts';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => {});
  return { promise, resolve, reject };
}

function fakeSend() {
  const output = new PassThrough();
  const exit = deferred<void>();
  let killed = false;
  const proc: ZfsStreamProcess = {
    argv: ['send'], pid: 1, output, input: null, done: exit.promise,
    kill: () => {
      killed = true;
    },
  };
  return { proc, output, exit, killed: () => killed };
}

function fakeSink() {
  const received: Buffer[] = [];
  const input = new Writable({ write: (c: Buffer, _e, cb) => (received.push(c), cb()) });
  const verdict = deferred<ReceivedSnapshot | null>();
  let aborted = false;
  const sink: ReceiveSink = { input, done: verdict.promise, abort: () => (aborted = true) };
  return { sink, verdict, received, aborted: () => aborted };
}

describe('one send → transport → receive stream', () => {
  it('resolves with the byte count when send and receive both exit 0', async () => {
    const send = fakeSend();
    const sink = fakeSink();
    const done = streamStep({ send: send.proc, sink: sink.sink, stallMs: 5000 });
    send.output.end(Buffer.alloc(4096, 1));
    send.exit.resolve();
    sink.sink.input.on('finish', () => sink.verdict.resolve(null));
    expect(await done).toBe(4096);
    expect(Buffer.concat(sink.received).length).toBe(4096);
  });

  it('reports the receiver\'s "out of space", not the broken pipe it caused at the sender', async () => {
    const send = fakeSend();
    const sink = fakeSink();
    const done = streamStep({ send: send.proc, sink: sink.sink, stallMs: 5000, graceMs: 500 });
    send.output.write(Buffer.alloc(1024));
    send.exit.reject(new DroverError('DROVER_ZFS_STREAM_INTERRUPTED', 'zfs send: Broken pipe', { retryable: true }));
    sink.verdict.reject(new DroverError('DROVER_ZFS_NO_SPACE', 'zfs receive: out of space'));
    await expect(done).rejects.toMatchObject({ code: 'DROVER_ZFS_NO_SPACE', retryable: false });
    expect(send.killed()).toBe(true);
    expect(sink.aborted()).toBe(true);
  });

  it('fails promptly with the cut transport as the cause even when zfs send never exits', async () => {
    const send = fakeSend();
    const sink = fakeSink();
    const started = Date.now();
    const done = streamStep({ send: send.proc, sink: sink.sink, stallMs: 60_000, graceMs: 300 });
    send.output.write(Buffer.alloc(1024));
    sink.verdict.reject(new DroverError('DROVER_TRANSFER_INTERRUPTED', 'connection closed', { retryable: true }));
    await expect(done).rejects.toMatchObject({ code: 'DROVER_TRANSFER_INTERRUPTED', retryable: true });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(send.output.destroyed).toBe(true);
  });

  it('fails when zfs send exits non-zero even though the receiver accepted the bytes', async () => {
    const send = fakeSend();
    const sink = fakeSink();
    const done = streamStep({ send: send.proc, sink: sink.sink, stallMs: 5000, graceMs: 300 });
    send.output.end(Buffer.alloc(10));
    sink.sink.input.on('finish', () => sink.verdict.resolve(null));
    send.exit.reject(new DroverError('DROVER_ZFS_COMMAND_FAILED', 'zfs send: something'));
    await expect(done).rejects.toMatchObject({ code: 'DROVER_ZFS_COMMAND_FAILED' });
  });
});

import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { describe, expect, it } from 'vitest';
import { DroverError } from '#common/errors.ts';
import { FrameReader, RESIDENT_HELLO } from './resident-frames.ts';
import { ResidentReceivers } from './ssh-resident.ts';

const HEADER = { op: 'receive' as const, pool: 'tank', datasetId: '6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b', resumable: false, full: false };

/** A channel to a fake `drover-receive resident`: hello, READY per header, a verdict per end frame. */
function fakeResident(streams: string[]): ClientChannel {
  const channel = Object.assign(new PassThrough(), { stderr: new PassThrough() }) as unknown as ClientChannel & PassThrough;
  let body = '';
  const reader = new FrameReader({
    line: () => {
      channel.push('DROVER-READY\n');
      reader.expectFrames();
    },
    data: (chunk) => void (body += chunk.toString()),
    end: () => {
      streams.push(body);
      body = '';
      channel.push('{"ok":true,"value":null}\n');
      reader.expectLine();
    },
  });
  // What the sender writes goes to the fake peer, not back to the sender's reads.
  channel._write = (chunk: Buffer, _e: BufferEncoding, done: () => void) => {
    reader.push(chunk);
    done();
  };
  (channel as unknown as { close: () => void }).close = () => void channel.destroy();
  setImmediate(() => channel.push(`${RESIDENT_HELLO}\n`));
  return channel;
}

/** A channel to an older drover-receive: it refuses the verb and exits 1. */
function olderPeer(): ClientChannel {
  const channel = Object.assign(new EventEmitter(), { stderr: new PassThrough(), write: () => true, close: () => {} });
  setImmediate(() => {
    channel.stderr.write('drover-receive: DROVER_SSH_RECEIVE_REFUSED: this key may run only "drover-receive session" or "drover-receive receive"\n');
    setImmediate(() => {
      channel.emit('exit', 1);
      channel.emit('close');
    });
  });
  return channel as unknown as ClientChannel;
}

const disconnected = (what: string) => new DroverError('DROVER_SSH_DISCONNECTED', what, { retryable: true });

async function send(receivers: ResidentReceivers, text: string): Promise<unknown> {
  const r = await receivers.receive(HEADER);
  if (r === null) throw new Error('not resident');
  r.channel.write(Buffer.from(text));
  await new Promise<void>((resolve) => r.channel.end(resolve));
  return r.verdict;
}

describe('the resident receivers of a connection', () => {
  it('takes receive after receive in one session: one process started on the peer', async () => {
    const streams: string[] = [];
    let execs = 0;
    const receivers = new ResidentReceivers({ exec: async () => (execs++, fakeResident(streams)), peer: 'n2', disconnected });
    expect(await send(receivers, 'one')).toBeNull();
    expect(await send(receivers, 'two')).toBeNull();
    expect(streams).toEqual(['one', 'two']);
    expect(execs).toBe(1);
    receivers.close(disconnected('test'));
  });

  it('opens at most `max` sessions: a receive beyond them waits for one to be free', async () => {
    const streams: string[] = [];
    let execs = 0;
    const receivers = new ResidentReceivers({ exec: async () => (execs++, fakeResident(streams)), peer: 'n2', disconnected }, 1);
    const first = await receivers.receive(HEADER);
    let secondStarted = false;
    const second = receivers.receive(HEADER).then((r) => ((secondStarted = true), r));
    await new Promise((r) => setTimeout(r, 20));
    expect(secondStarted).toBe(false);
    first!.channel.end();
    await first!.verdict;
    const r2 = await second;
    r2!.channel.end();
    await r2!.verdict;
    expect(execs).toBe(1);
    receivers.close(disconnected('test'));
  });

  it('answers null for a peer whose drover-receive refuses the verb, and does not ask it again', async () => {
    let execs = 0;
    const receivers = new ResidentReceivers({ exec: async () => (execs++, olderPeer()), peer: 'n2', disconnected });
    expect(await receivers.receive(HEADER)).toBeNull();
    expect(receivers.usable).toBe(false);
    expect(await receivers.receive(HEADER)).toBeNull();
    expect(execs).toBe(1);
  });
});

import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ClientChannel } from 'ssh2';
import { DroverError } from '#common/errors.ts';
import { SshSession } from './ssh-session.ts';

/** A stand-in for the remote drover-receive session: records what is written, answers as told. */
class FakeChannel extends EventEmitter {
  readonly written: string[] = [];
  readonly stderr = new PassThrough();
  closed = false;
  write(text: string): boolean {
    this.written.push(text);
    return true;
  }
  answer(bytes: string): void {
    this.emit('data', Buffer.from(bytes));
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }
}

function session() {
  const channel = new FakeChannel();
  const s = new SshSession(channel as unknown as ClientChannel, 'n2', () => new DroverError('DROVER_SSH_DISCONNECTED', 'gone', { retryable: true }));
  return { channel, s };
}

describe("the sender's end of a drover-receive session", () => {
  it('sends one JSON line per request and matches answers by id, even split across chunks', async () => {
    const { channel, s } = session();
    const first = s.request({ op: 'listSnapshots', pool: 'p', datasetId: 'x' }, 1000);
    const second = s.request({ op: 'hold', pool: 'p', datasetId: 'x', snapshot: 'drover-a', tag: 'drover-base' }, 1000);
    expect(channel.written.map((w) => JSON.parse(w))).toEqual([
      { op: 'listSnapshots', pool: 'p', datasetId: 'x', id: 1 },
      { op: 'hold', pool: 'p', datasetId: 'x', snapshot: 'drover-a', tag: 'drover-base', id: 2 },
    ]);
    channel.answer('{"id":1,"ok":true,"val');
    channel.answer('ue":[]}\n{"id":2,"ok":false,"error":{"code":"DROVER_ZFS_HOLD_EXISTS","message":"tag exists","retryable":false}}\n');
    expect(await first).toEqual([]);
    await expect(second).rejects.toMatchObject({ code: 'DROVER_ZFS_HOLD_EXISTS', message: 'n2: tag exists' });
  });

  it('fails every waiting request when the channel closes, as a retryable disconnect', async () => {
    const { channel, s } = session();
    const a = s.request({ op: 'features', pool: 'p' }, 1000);
    const b = s.request({ op: 'prepare', pool: 'p' }, 1000);
    channel.close();
    await expect(a).rejects.toMatchObject({ code: 'DROVER_SSH_DISCONNECTED', retryable: true });
    await expect(b).rejects.toMatchObject({ code: 'DROVER_SSH_DISCONNECTED' });
    expect(s.alive).toBe(false);
  });

  it("reports drover-receive's refusal when it exits with a message, and not as a disconnect", async () => {
    const { channel, s } = session();
    const a = s.request({ op: 'features', pool: 'p' }, 1000);
    channel.stderr.write('drover-receive: DROVER_SSH_RECEIVE_REFUSED: this key may run only …\n');
    await new Promise((r) => setImmediate(r));
    channel.emit('exit', 1);
    channel.close();
    await expect(a).rejects.toMatchObject({ code: 'DROVER_SSH_RECEIVE_REFUSED', retryable: false });
  });

  it('gives up on garbage and on a request that never answers', async () => {
    const garbage = session();
    const run = garbage.s.request({ op: 'features', pool: 'p' }, 1000);
    garbage.channel.answer('Welcome to the machine\n');
    await expect(run).rejects.toMatchObject({ code: 'DROVER_SSH_PROTOCOL' });
    const silent = session();
    await expect(silent.s.request({ op: 'features', pool: 'p' }, 50)).rejects.toMatchObject({ code: 'DROVER_SSH_TIMEOUT', retryable: true });
    expect(silent.channel.closed).toBe(true);
  });
});

import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ClientChannel } from 'ssh2';
import { DroverError } from '#common/errors.ts';
import { SshCommandSession } from './ssh-session.ts';

/** A stand-in for the remote `sh`: records what the session writes, answers as told. */
class FakeShell extends EventEmitter {
  readonly written: string[] = [];
  readonly stderr = new PassThrough();
  closed = false;
  write(text: string): boolean {
    this.written.push(text);
    return true;
  }
  answer(bytes: string | Buffer): void {
    this.emit('data', Buffer.from(bytes));
  }
  close(): void {
    this.closed = true;
    this.emit('close');
  }
}

function session() {
  const shell = new FakeShell();
  const s = new SshCommandSession(shell as unknown as ClientChannel, () => new DroverError('DROVER_SSH_DISCONNECTED', 'gone', { retryable: true }));
  return { shell, s };
}

describe('the persistent remote shell', () => {
  it('runs commands one at a time and splits stdout from stderr by the announced lengths', async () => {
    const { shell, s } = session();
    const first = s.run("zfs get -Hp guid 'p/x'", ['zfs', 'get'], 1000);
    const second = s.run('zfs hold drover-base p/x@drover-a', ['zfs', 'hold'], 1000);
    expect(shell.written.filter((w) => w.includes('zfs '))).toHaveLength(1);
    // The answer may come in pieces, and stdout may itself contain newlines.
    shell.answer('DROVER-END 0 9 0');
    shell.answer('\nline1\nl2\n');
    expect(await first).toEqual({ exitCode: 0, signal: null, stdout: 'line1\nl2\n', stderr: '' });
    expect(shell.written.filter((w) => w.includes('zfs '))).toHaveLength(2);
    shell.answer("DROVER-END 1 0 26\ncannot hold: tag exists\n\n\n");
    expect(await second).toMatchObject({ exitCode: 1, stdout: '', stderr: 'cannot hold: tag exists\n\n\n' });
  });

  it('reports a command killed by a signal', async () => {
    const { shell, s } = session();
    const run = s.run('zfs send p/x@a', ['zfs', 'send'], 1000);
    shell.answer('DROVER-END 143 0 0\n');
    expect(await run).toMatchObject({ exitCode: null, signal: 'SIG15' });
  });

  it('fails every waiting command when the channel closes, as a retryable disconnect', async () => {
    const { shell, s } = session();
    const a = s.run('zfs list', ['zfs', 'list'], 1000);
    const b = s.run('zfs list', ['zfs', 'list'], 1000);
    shell.close();
    await expect(a).rejects.toMatchObject({ code: 'DROVER_SSH_DISCONNECTED', retryable: true });
    await expect(b).rejects.toMatchObject({ code: 'DROVER_SSH_DISCONNECTED' });
    expect(s.alive).toBe(false);
  });

  it('gives up on garbage and on a command that never answers', async () => {
    const garbage = session();
    const run = garbage.s.run('zfs list', ['zfs', 'list'], 1000);
    garbage.shell.answer('Welcome to the machine\n');
    await expect(run).rejects.toMatchObject({ code: 'DROVER_SSH_PROTOCOL' });
    const silent = session();
    await expect(silent.s.run('zfs list', ['zfs', 'list'], 50)).rejects.toMatchObject({ code: 'DROVER_SSH_TIMEOUT', retryable: true });
    expect(silent.shell.closed).toBe(true);
  });
});

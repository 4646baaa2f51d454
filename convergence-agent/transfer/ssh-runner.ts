/**
 * A CommandRunner that runs on a peer over its persistent ssh connection. With it, the zfs
 * adapter (ZfsStore) drives the peer's zfs exactly as it drives the local one: same argv
 * templates, same validation, same error classification.
 */
import { PassThrough, Writable } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { DroverError } from '#common/errors.ts';
import type { CommandResult, CommandRunner, RunOptions, SpawnOptions, StreamingProcess } from '../zfs/command.ts';
import type { SshConnection } from './ssh-connection.ts';

const STDERR_CAP = 64 * 1024;

/** stdin of a remote process: forwards to the channel once it is open, with the channel's backpressure. */
class ChannelInput extends Writable {
  private channel: ClientChannel | null = null;

  constructor(private readonly ready: Promise<ClientChannel>) {
    super({ highWaterMark: 4 * 1024 * 1024 });
    ready.then((c) => (this.channel = c)).catch(() => {});
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    const write = (channel: ClientChannel): void => {
      if (channel.write(chunk)) callback();
      else channel.once('drain', () => callback());
    };
    if (this.channel) write(this.channel);
    else this.ready.then(write, (err: Error) => callback(err));
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.ready.then((c) => c.end(() => callback()), (err: Error) => callback(err));
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.ready.then((c) => c.close(), () => {});
    callback(err);
  }
}

export class SshRunner implements CommandRunner {
  constructor(private readonly connection: SshConnection) {}

  async run(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    if (options.input !== undefined) throw new DroverError('DROVER_INTERNAL', 'SshRunner.run does not take input');
    return this.connection.run([file, ...args], { timeoutMs: options.timeoutMs });
  }

  spawn(file: string, args: readonly string[], options: SpawnOptions = {}): StreamingProcess {
    if (typeof options.stdout === 'number') throw new DroverError('DROVER_INTERNAL', 'a remote program cannot write into a local descriptor');
    const argv = [file, ...args];
    const ready = this.connection.stream(argv);
    ready.catch(() => {});
    const stdin = options.stdin === 'pipe' ? new ChannelInput(ready) : null;
    const stdout = options.stdout === 'pipe' ? new PassThrough({ highWaterMark: 4 * 1024 * 1024 }) : null;
    const exited = ready.then(
      (channel) =>
        new Promise<CommandResult>((resolve) => {
          let stderr = '';
          let exitCode: number | null = null;
          let signal: string | null = null;
          channel.stderr.setEncoding('utf8');
          channel.stderr.on('data', (d: string) => {
            if (stderr.length < STDERR_CAP) stderr += d;
          });
          if (stdout) channel.pipe(stdout);
          else channel.resume();
          if (!stdin) channel.end();
          channel.on('exit', (code: number | null, sig?: string) => {
            exitCode = code ?? null;
            signal = sig ?? null;
          });
          channel.on('close', () => {
            if (exitCode === null && signal === null) stderr += `\nssh: connection lost (${this.connection.disconnected(argv).message})`;
            resolve({ exitCode, signal, stdout: '', stderr });
          });
        }),
      (err: Error) => ({ exitCode: null, signal: null, stdout: '', stderr: `ssh: connection lost: ${err.message}` }),
    );
    return {
      pid: undefined,
      stdin,
      stdout,
      exited,
      kill: () => {
        ready.then((c) => c.close(), () => {});
      },
    };
  }
}

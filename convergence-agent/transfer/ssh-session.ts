/**
 * A persistent remote `sh` on a peer that runs drover's short commands (zfs get, hold,
 * release …) one after another. Why: sshd starts the user's login shell for every exec,
 * and that shell's start-up (profiles, rc files) can cost seconds per command (2.8 s on the
 * test machine, whose root .bashrc runs pyenv); a step runs a dozen short commands. Here the
 * shell starts once per connection.
 *
 * Each command is the same quoted argv an exec would send (validated names, fixed
 * templates). Its stdout and stderr go to files in a private temp dir; the shell then prints
 * `DROVER-END <status> <stdout bytes> <stderr bytes>` followed by both, so the framing never
 * depends on what a command prints.
 */
import type { ClientChannel } from 'ssh2';
import { DroverError } from '#common/errors.ts';
import type { CommandResult } from '../zfs/command.ts';

const MARK = 'DROVER-END ';
const START = 'LC_ALL=C; export LC_ALL; T=$(mktemp -d) || exit 1; trap \'rm -rf "$T"\' EXIT\n';

interface Job {
  line: string;
  argv: readonly string[];
  resolve: (r: CommandResult) => void;
  reject: (e: DroverError) => void;
  timeoutMs: number;
}

export class SshCommandSession {
  private buffer: Buffer = Buffer.alloc(0);
  private current: Job | null = null;
  private readonly queue: Job[] = [];
  private closed: DroverError | null = null;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly channel: ClientChannel,
    private readonly describe: (argv: readonly string[]) => DroverError,
  ) {
    channel.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    channel.stderr.resume();
    channel.on('close', () => this.close(describe(this.current?.argv ?? ['sh'])));
    channel.write(START);
  }

  get alive(): boolean {
    return this.closed === null;
  }

  /** Runs one command (a quoted command line) and resolves with its exit status and output. */
  run(line: string, argv: readonly string[], timeoutMs: number): Promise<CommandResult> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.queue.push({ line, argv, resolve, reject, timeoutMs });
      this.next();
    });
  }

  close(err: DroverError): void {
    if (this.closed) return;
    this.closed = err;
    clearTimeout(this.timer);
    for (const job of [this.current, ...this.queue]) job?.reject(err);
    this.current = null;
    this.queue.length = 0;
    this.channel.close();
  }

  private next(): void {
    if (this.current || this.closed) return;
    const job = this.queue.shift();
    if (!job) return;
    this.current = job;
    this.timer = setTimeout(() => {
      this.close(new DroverError('DROVER_SSH_TIMEOUT', `${job.argv.slice(0, 2).join(' ')} timed out on the peer`, { retryable: true }));
    }, job.timeoutMs);
    this.channel.write(`${job.line} </dev/null >"$T/o" 2>"$T/e"; echo "${MARK}$? $(wc -c <"$T/o") $(wc -c <"$T/e")"; cat "$T/o" "$T/e"\n`);
  }

  private parse(): void {
    while (this.current) {
      const newline = this.buffer.indexOf(10);
      if (newline < 0) return;
      const header = this.buffer.subarray(0, newline).toString('latin1');
      if (!header.startsWith(MARK)) {
        this.close(new DroverError('DROVER_SSH_PROTOCOL', `unexpected output from the remote shell: ${header.slice(0, 100)}`));
        return;
      }
      const [status, out, err] = header.slice(MARK.length).trim().split(/\s+/).map(Number);
      if (status === undefined || out === undefined || err === undefined || [status, out, err].some((n) => !Number.isInteger(n))) {
        this.close(new DroverError('DROVER_SSH_PROTOCOL', `bad status line from the remote shell: ${header.slice(0, 100)}`));
        return;
      }
      const end = newline + 1 + out + err;
      if (this.buffer.length < end) return;
      const stdout = this.buffer.subarray(newline + 1, newline + 1 + out).toString('utf8');
      const stderr = this.buffer.subarray(newline + 1 + out, end).toString('utf8');
      this.buffer = this.buffer.subarray(end);
      const job = this.current;
      this.current = null;
      clearTimeout(this.timer);
      // The shell reports a command killed by signal N as 128+N.
      job.resolve(status > 128 ? { exitCode: null, signal: `SIG${status - 128}`, stdout, stderr } : { exitCode: status, signal: null, stdout, stderr });
      this.next();
    }
  }
}

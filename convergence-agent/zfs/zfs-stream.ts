/**
 * `zfs send` and `zfs receive` as streaming processes. The stream itself is moved by the
 * transfer engine; this file only starts the processes (argv from argv.ts) and turns their
 * exit status and stderr into a classified result.
 */
import type { Readable, Writable } from 'node:stream';
import { DroverError } from '#common/errors.ts';
import { argv, type Argv, type SendFlag } from './argv.ts';
import type { CommandRunner, StreamingProcess } from './command.ts';
import { zfsError } from './zfs-errors.ts';

export interface ZfsStreamProcess {
  readonly argv: Argv;
  readonly pid: number | undefined;
  /** `zfs send`'s stdout; null for a receive. */
  readonly output: Readable | null;
  /** `zfs receive`'s stdin; null for a send. */
  readonly input: Writable | null;
  /** Resolves when the process exited 0; rejects with a classified DroverError otherwise. */
  readonly done: Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

function wrap(process: StreamingProcess, args: Argv): ZfsStreamProcess {
  const done = process.exited.then((r) => {
    if (r.exitCode === 0) return;
    throw zfsError({ argv: ['zfs', ...args], exitCode: r.exitCode, signal: r.signal, stderr: r.stderr });
  });
  done.catch(() => {}); // observed by the caller; never an unhandled rejection
  return { argv: args, pid: process.pid, output: process.stdout, input: process.stdin, done, kill: (s) => process.kill(s) };
}

export interface SendRequest {
  pool: string;
  datasetId: string;
  snapshot: string;
  /** The incremental base (`-i`); null for a full stream. */
  base: string | null;
  flags?: readonly SendFlag[];
  /** `-I` instead of `-i`: the snapshots between base and snapshot are sent too. */
  intermediates?: boolean;
  /** A resume token (`send -t`), replacing snapshot/base; only where the features allow it. */
  resumeToken?: string | null;
  /**
   * A descriptor-backed stream for zfs to write the stream into directly (a native pump's
   * stdin); `output` is then null. Default: a pipe to read from `output`.
   */
  into?: Writable;
}

/** The descriptor under a socket or pipe stream of this process. */
export function descriptorOf(stream: Writable): number {
  const fd = (stream as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new DroverError('DROVER_INTERNAL', 'the stream has no file descriptor');
  return fd;
}

/** Starts `zfs send`; read the stream from `output`. */
export function spawnSend(runner: CommandRunner, zfsPath: string, request: SendRequest): ZfsStreamProcess {
  let args: Argv;
  if (request.resumeToken) {
    if (!/^[0-9a-zA-Z-]{1,10000}$/.test(request.resumeToken)) {
      throw new DroverError('DROVER_ZFS_INVALID_NAME', 'a resume token holds only letters, digits and "-"');
    }
    args = ['send', '-t', request.resumeToken];
  } else {
    args = argv.send(request.pool, request.datasetId, request.snapshot, request.base, request.flags ?? [], request.intermediates === true);
  }
  return wrap(runner.spawn(zfsPath, args, { stdout: request.into ? descriptorOf(request.into) : 'pipe' }), args);
}

/**
 * Starts `zfs receive -u [-s] <pool>/drover/<id>`; write the stream to `input`, or give a
 * descriptor of this process (`from`) that zfs reads the stream from itself (`input` is then null).
 */
export function spawnReceive(runner: CommandRunner, zfsPath: string, pool: string, datasetId: string, resumable: boolean, from?: number): ZfsStreamProcess {
  const args = argv.receive(pool, datasetId, resumable);
  return wrap(runner.spawn(zfsPath, args, { stdin: from ?? 'pipe' }), args);
}

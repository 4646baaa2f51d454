/**
 * The agent's one way of running an outside program (execa's adapter file). Arguments are
 * always an array: nothing reaches a shell. This file does not interpret output or exit
 * codes — callers (zfs.ts, the tls certificate helper) classify them.
 */
import type { Readable, Writable } from 'node:stream';
import { execa } from 'execa';
import { DroverError } from '#common/errors.ts';

export interface CommandResult {
  /** null when the process was killed by a signal. */
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SpawnOptions {
  /**
   * 'pipe' gives a writable stdin; a number is a descriptor of this process that the program
   * reads directly (drover-receive hands zfs receive its own stdin, the ssh channel); default 'ignore'.
   */
  stdin?: 'pipe' | 'ignore' | number;
  /**
   * 'pipe' gives a readable stdout; a number is a descriptor of this process that the
   * program writes into directly (a native pump's stdin); default 'ignore'.
   */
  stdout?: 'pipe' | 'ignore' | number;
}

/** A running program whose stdin/stdout are streams; stderr is collected (capped) for classification. */
export interface StreamingProcess {
  readonly pid: number | undefined;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  /** Resolves once the process has exited (never rejects); `stdout` is always ''. */
  readonly exited: Promise<CommandResult>;
  kill(signal?: NodeJS.Signals): void;
}

export interface CommandRunner {
  /** Runs to completion. Resolves with the exit status (non-zero is not an error here). */
  run(file: string, args: readonly string[], options?: RunOptions): Promise<CommandResult>;
  /** Starts a program with streaming stdin/stdout. */
  spawn(file: string, args: readonly string[], options?: SpawnOptions): StreamingProcess;
}

const STDERR_CAP = 64 * 1024;

function spawnFailure(file: string, err: unknown): DroverError {
  const code = (err as { code?: string }).code;
  return new DroverError(
    code === 'ENOENT' ? 'DROVER_COMMAND_NOT_FOUND' : 'DROVER_COMMAND_FAILED',
    `cannot run ${file}: ${err instanceof Error ? err.message : String(err)}`,
    { detail: { file }, cause: err },
  );
}

function toResult(r: {
  exitCode?: number | undefined;
  signal?: string | undefined;
  stdout?: unknown;
  stderr?: unknown;
}): CommandResult {
  return {
    exitCode: r.exitCode ?? null,
    signal: r.signal ?? null,
    stdout: typeof r.stdout === 'string' ? r.stdout : '',
    stderr: typeof r.stderr === 'string' ? r.stderr : '',
  };
}

/** The real runner, backed by execa. */
export const execaRunner: CommandRunner = {
  async run(file, args, options = {}) {
    const result = await execa(file, [...args], {
      reject: false,
      stripFinalNewline: false,
      input: options.input,
      stdin: options.input === undefined ? 'ignore' : 'pipe',
      timeout: options.timeoutMs,
      cancelSignal: options.signal,
      maxBuffer: 64 * 1024 * 1024,
      env: { LC_ALL: 'C' },
    });
    if (result.failed && result.exitCode === undefined && result.signal === undefined) {
      throw spawnFailure(file, result.cause ?? result);
    }
    return toResult(result);
  },

  spawn(file, args, options = {}) {
    const child = execa(file, [...args], {
      reject: false,
      // execa takes any descriptor number at run time; its types list only 3..9.
      stdin: (options.stdin ?? 'ignore') as 'pipe' | 'ignore',
      stdout: (options.stdout ?? 'ignore') as 'pipe' | 'ignore',
      stderr: 'pipe',
      buffer: { stdout: false, stderr: false },
      env: { LC_ALL: 'C' },
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (stderr.length < STDERR_CAP) stderr += chunk.slice(0, STDERR_CAP - stderr.length);
    });
    const exited = child.then(
      (r) => ({ ...toResult(r), stderr: stderr || toResult(r).stderr }),
      (err: unknown) => ({ exitCode: null, signal: null, stdout: '', stderr: stderr || String(err) }),
    );
    return {
      pid: child.pid,
      stdin: child.stdin ?? null,
      stdout: child.stdout ?? null,
      exited,
      kill: (signal = 'SIGTERM') => {
        child.kill(signal);
      },
    };
  },
};

/** One recorded call of a {@link RecordingRunner}. */
export interface RecordedCall {
  file: string;
  args: readonly string[];
}

/**
 * Wraps a runner and records every call; tests use it to prove what ran (or that nothing
 * ran, for invalid names). No module mocking needed.
 */
export class RecordingRunner implements CommandRunner {
  readonly calls: RecordedCall[] = [];
  constructor(private readonly inner: CommandRunner) {}

  run(file: string, args: readonly string[], options?: RunOptions): Promise<CommandResult> {
    this.calls.push({ file, args: [...args] });
    return this.inner.run(file, args, options);
  }

  spawn(file: string, args: readonly string[], options?: SpawnOptions): StreamingProcess {
    this.calls.push({ file, args: [...args] });
    return this.inner.spawn(file, args, options);
  }
}

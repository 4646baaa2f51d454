import { execa } from 'execa';
import { DroverError } from '#common/errors.ts';

/**
 * The harness's one way to run a command (execa adapter): arguments as an array, never a
 * shell string; a timeout on every call; a failure becomes DROVER_COMMAND_FAILED with the
 * command, exit code and stderr in `detail`.
 */

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  /** When false, a non-zero exit is returned instead of thrown. */
  reject?: boolean;
  env?: Record<string, string>;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** PATH with the sbin directories, where dockerd, sshd, zpool and ip live on Debian. */
export const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':');

export async function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await execa(command, args, {
    reject: false,
    timeout: options.timeoutMs ?? 60_000,
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    env: { PATH: SYSTEM_PATH, ...options.env },
    stripFinalNewline: true,
  });
  const out: RunResult = {
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    exitCode: result.exitCode ?? -1,
  };
  if (result.timedOut) {
    throw new DroverError('DROVER_COMMAND_TIMEOUT', `${command} ${args.join(' ')} timed out`, {
      retryable: true,
      detail: { command, args, timeoutMs: options.timeoutMs ?? 60_000 },
    });
  }
  if (out.exitCode !== 0 && options.reject !== false) {
    throw new DroverError('DROVER_COMMAND_FAILED', `${command} ${args.join(' ')} exited ${out.exitCode}: ${out.stderr || out.stdout}`.trim(), {
      retryable: /busy/i.test(out.stderr),
      detail: { command, args, exitCode: out.exitCode, stderr: out.stderr },
    });
  }
  return out;
}

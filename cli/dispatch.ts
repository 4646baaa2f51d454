import { parseArgs } from 'node:util';
import { ApiClient } from '#common/api-client.ts';
import { DroverError, isDroverError, toDroverError } from '#common/errors.ts';
import { exitCodeOf, usageError } from './cli-error.ts';
import type { Command, Options } from './command.ts';
import { clusterCommand } from './commands/cluster.ts';
import { datasetsCommand } from './commands/datasets.ts';
import { demoCommand } from './commands/demo.ts';
import { deployCommand } from './commands/deploy.ts';
import { moveCommand } from './commands/move.ts';
import { statusCommand } from './commands/status.ts';
import { print, type CliContext, type Output } from './context.ts';

export const DEFAULT_CONTROL = 'http://127.0.0.1:4523';

const COMMANDS: Command[] = [deployCommand, statusCommand, moveCommand, datasetsCommand, demoCommand];

const GLOBAL: Options = {
  control: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export interface CliIo {
  stdout: Output;
  stderr: Output;
  env: Record<string, string | undefined>;
  cwd: string;
  sleep(ms: number): Promise<void>;
}

function mainUsage(): string {
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(10)}${c.summary}`);
  lines.push(`  ${'cluster'.padEnd(10)}${clusterCommand.summary}`);
  return [
    'usage: drover <command> [--control URL] [--json] …',
    '',
    'commands:',
    ...lines,
    '',
    `--control URL  the control service (default: $DROVER_CONTROL, else ${DEFAULT_CONTROL})`,
    '--json         print the answer as JSON',
    "drover <command> --help shows a command's usage.",
  ].join('\n');
}

/**
 * Runs one command line and returns the exit code: 0 done, 1 failed (control unreachable,
 * refused by the API, a migration that failed), 2 a command line drover cannot run.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    const error = isDroverError(err, 'DROVER_CONTROL_UNREACHABLE') ? unreachable(err) : toDroverError(err);
    const code = isDroverError(err) ? exitCodeOf(error) : 1;
    print(io.stderr, `drover: ${error.message}`);
    for (const line of namedPaths(error)) print(io.stderr, `  - ${line}`);
    if (typeof error.detail.usage === 'string') print(io.stderr, `usage: ${error.detail.usage}`);
    if (!isDroverError(err)) print(io.stderr, '(an unexpected error; please report it)');
    return code;
  }
}

async function dispatch(argv: string[], io: CliIo): Promise<number> {
  const at = commandIndex(argv);
  if (at < 0) {
    if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
      print(argv.length === 0 ? io.stderr : io.stdout, mainUsage());
      return argv.length === 0 ? 2 : 0;
    }
    throw usageError(`no command given`, 'drover <command> … (drover --help lists them)');
  }
  const name = argv[at]!;
  if (name === clusterCommand.name) return clusterCommand.delegate(argv.slice(at + 1));
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) throw usageError(`unknown command "${name}" (drover --help lists them)`);
  const rest = [...argv.slice(0, at), ...argv.slice(at + 1)];
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL, ...command.options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw usageError(`${command.name}: ${(err as Error).message.replace(/\. To specify a positional argument.*$/s, '')}`, command.usage);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help === true) {
    print(io.stdout, `usage: ${command.usage}`);
    return 0;
  }
  const control = (values.control as string | undefined) ?? io.env.DROVER_CONTROL ?? DEFAULT_CONTROL;
  try {
    new URL(control);
  } catch {
    throw usageError(`--control "${control}" is not a URL (e.g. ${DEFAULT_CONTROL})`);
  }
  const ctx: CliContext = {
    stdout: io.stdout,
    stderr: io.stderr,
    cwd: io.cwd,
    control: new ApiClient({ baseUrl: control }),
    json: values.json === true,
    sleep: io.sleep,
  };
  return command.run(ctx, values, parsed.positionals);
}

/**
 * The paths an error answer named: Flocker's `errors` (strings), and the further problems of
 * a refused deploy file (`detail.issues`: `{ key, message }`).
 */
function namedPaths(error: DroverError): string[] {
  const lines: string[] = [];
  for (const list of [error.detail.errors, error.detail.issues]) {
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      if (typeof item === 'string') lines.push(item);
      else if (item !== null && typeof item === 'object') {
        const { key, path, message } = item as { key?: unknown; path?: unknown; message?: unknown };
        const where = typeof key === 'string' ? key : Array.isArray(path) ? path.join('.') : typeof path === 'string' ? path : '';
        lines.push(where === '' ? String(message) : `${where}: ${String(message)}`);
      }
    }
  }
  return lines;
}

/** "Cannot reach" said once, with the low-level reason and what to set. */
function unreachable(err: DroverError): DroverError {
  const inner = (err.cause as { name?: string; cause?: { code?: string; message?: string } } | undefined) ?? {};
  const why = inner.name === 'TimeoutError' ? 'no answer in time' : (inner.cause?.code ?? inner.cause?.message ?? inner.name ?? 'no answer');
  const base = /control service at (\S+) /.exec(err.message)?.[1] ?? 'its address';
  return new DroverError('DROVER_CONTROL_UNREACHABLE', `cannot reach the control service at ${base} (${why}); set --control or DROVER_CONTROL`, { cause: err });
}

/** The index of the command word, skipping global flags (and `--control`'s value) before it. */
function commandIndex(argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--control') i++;
    else if (!arg.startsWith('-')) return i;
  }
  return -1;
}

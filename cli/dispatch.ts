import { Command as Commander, CommanderError } from 'commander';
import { ApiClient } from '#common/api-client.ts';
import { clientConfigPath, contextEndpoints, pickContext, readClientConfig } from '#common/client-config.ts';
import { anyHttps, endpointsText, parseControlEndpoints } from '#common/control-endpoints.ts';
import { readTlsIdentity } from '#common/tls-client.ts';
import { DroverError, isDroverError, toDroverError } from '#common/errors.ts';
import { exitCodeOf, usageError } from './cli-error.ts';
import type { Command } from './command.ts';
import { caCommand } from './commands/ca.ts';
import { clusterCommand } from './commands/cluster.ts';
import { datasetsCommand } from './commands/datasets.ts';
import { demoCommand } from './commands/demo.ts';
import { deployCommand } from './commands/deploy.ts';
import { moveCommand } from './commands/move.ts';
import { migrationsCommand } from './commands/migrations.ts';
import { nodeCommand } from './commands/node.ts';
import { controlCommand } from './commands/control.ts';
import { statusCommand } from './commands/status.ts';
import { completionCommand } from './commands/completion.ts';
import { eventsCommand } from './commands/events.ts';
import { logsCommand } from './commands/logs.ts';
import { nodesCommand } from './commands/nodes.ts';
import { rmCommand } from './commands/rm.ts';
import { scaleCommand } from './commands/scale.ts';
import { uiCommand } from './commands/ui.ts';
import { print, type CliContext, type CommandTree, type Connection, type Output } from './context.ts';

export const DEFAULT_CONTROL = 'https://127.0.0.1:4523';

/** The one command table: parsing, help and completion all come from it. */
const COMMANDS: Command[] = [
  deployCommand,
  statusCommand,
  nodesCommand,
  moveCommand,
  migrationsCommand,
  logsCommand,
  eventsCommand,
  uiCommand,
  rmCommand,
  scaleCommand,
  nodeCommand,
  controlCommand,
  datasetsCommand,
  demoCommand,
  caCommand,
  completionCommand,
];

/** `-o FORMAT`'s values. */
const OUTPUTS = ['wide', 'json'];

export interface CliIo {
  stdout: Output;
  stderr: Output;
  env: Record<string, string | undefined>;
  cwd: string;
  sleep(ms: number): Promise<void>;
  /** Ends `events -f` and `logs -f` (tests); the process's own end does it otherwise. */
  signal?: AbortSignal;
  /** The clock (tests); Date.now otherwise. */
  now?(): number;
}

/**
 * Runs one command line and returns the exit code: 0 done, 1 failed (control unreachable,
 * refused by the API, a migration that failed), 2 a command line drover cannot run.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    if (err instanceof Exit) return err.code;
    const error = isDroverError(err, 'DROVER_CONTROL_UNREACHABLE') ? unreachable(err) : notFound(toDroverError(err));
    const code = isDroverError(err) ? exitCodeOf(error) : 1;
    print(io.stderr, `drover: ${error.message}`);
    for (const line of namedPaths(error)) print(io.stderr, `  - ${line}`);
    if (typeof error.detail.usage === 'string') print(io.stderr, `usage: ${error.detail.usage}`);
    if (!isDroverError(err)) print(io.stderr, '(an unexpected error; please report it)');
    return code;
  }
}

/** Help was shown (0), or shown because no command was given (2). */
class Exit {
  constructor(readonly code: number) {}
}

async function dispatch(argv: string[], io: CliIo): Promise<number> {
  // `drover cluster …` belongs to local-cluster/, with its own flags and help: it gets its
  // arguments untouched, before commander sees them.
  const at = commandIndex(argv);
  if (at >= 0 && argv[at] === clusterCommand.name) return clusterCommand.delegate(argv.slice(at + 1));
  let code = 0;
  const program = new Commander('drover')
    .usage('<command> [--control URL] [--json] …')
    .description('drover moves Docker applications between nodes together with their data.')
    .option('--control <url>', `the control service (default: $DROVER_CONTROL, else the context's server, else ${DEFAULT_CONTROL})`)
    .option('--context <name>', 'a context of the config file ($DROVER_CONFIG, else ~/.config/drover/config.yml): server, ca, cert, key (default: $DROVER_CONTEXT, else current-context)')
    .option('--ca <file>', "the cluster CA's certificate (default: $DROVER_CA, else the context's)")
    .option('--cert <file>', 'your user certificate, drover ca user NAME (default: $DROVER_CERT, else the context\'s)')
    .option('--key <file>', "its key (default: $DROVER_KEY, else the context's)")
    .option('--json', 'print the answer as JSON')
    .option('-o, --output <format>', `wide: tables with more columns; json: as --json`)
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text), outputError: () => {} })
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError(false)
    .addHelpText('after', "\ndrover <command> --help shows a command's usage.")
    .exitOverride((err) => {
      throw translate(err, null, '');
    });
  for (const command of COMMANDS) {
    define(program, command, command.name, async (run, values, positionals, globals) => {
      // Not spread: the context's `control` is a getter that says, when used, why there is no client.
      const ctx = await context(io, globals);
      ctx.tree = treeOf(program);
      code = await run(ctx, values, positionals);
    });
  }
  // Listed in the help; never parsed here (see above).
  program.command(clusterCommand.name).description(clusterCommand.summary).usage('up|down|status|images … (drover cluster --help)');
  await program.parseAsync(argv, { from: 'user' });
  return code;
}

type Runner = (run: NonNullable<Command['run']>, values: Record<string, unknown>, positionals: string[], globals: Record<string, unknown>) => Promise<void>;

/** Adds `command` (and its subcommands) under `parent`; `path` is how errors name it ("datasets create"). */
function define(parent: Commander, command: Command, path: string, runner: Runner): void {
  const sub = parent
    .command(command.name)
    .description(command.summary)
    .usage(command.usage.replace(/^drover \S+ /, '').replace(new RegExp(`^${command.name} `), ''))
    .exitOverride((err) => {
      throw translate(err, command, path);
    });
  command.configure?.(sub);
  if (command.subcommands !== undefined) {
    for (const child of command.subcommands) define(sub, child, `${path} ${child.name}`, runner);
    // Only reached when no subcommand matched.
    sub.allowExcessArguments(true).action((_values, self: Commander) => {
      const [word] = self.args;
      const names = command.subcommands!.map((c) => c.name);
      if (word === undefined) throw usageError(`${path} needs a subcommand: ${names.slice(0, -1).join(', ')} or ${names.at(-1)}`, command.usage);
      throw usageError(`unknown ${path} subcommand "${word}"`, command.usage);
    });
    return;
  }
  const run = command.run!;
  // Extra arguments are the command's own to refuse, with its own message.
  sub.allowExcessArguments(true).action(async (...args: unknown[]) => {
    const self = args.at(-1) as Commander;
    await runner(run, self.opts(), self.args, self.optsWithGlobals());
  });
}

/** commander's verdicts as drover's: usage errors (exit 2) naming the command and flag. */
function translate(err: CommanderError, command: Command | null, path: string): Exit | DroverError {
  switch (err.code) {
    case 'commander.helpDisplayed':
    case 'commander.version':
      return new Exit(0);
    case 'commander.help':
      return new Exit(2);
    case 'commander.unknownCommand':
      return usageError(`unknown command "${/'(.*)'/.exec(err.message)?.[1] ?? '?'}" (drover --help lists them)`);
    case 'commander.missingArgument':
      if (command?.needs !== undefined) return usageError(`${path} needs ${command.needs}`, command.usage);
  }
  const text = err.message.replace(/^error: /, '');
  const message = `${text.charAt(0).toUpperCase()}${text.slice(1)}`;
  return usageError(path === '' ? message : `${path}: ${message}`, command?.usage);
}

/** What a command may touch; the control client is made on first use. */
async function context(io: CliIo, globals: Record<string, unknown>): Promise<CliContext> {
  const output = globals.output as string | undefined;
  if (output !== undefined && !OUTPUTS.includes(output)) throw usageError(`-o "${output}" is not an output format: give -o wide or -o json`);
  let client: ApiClient | DroverError;
  let connection: Connection | undefined;
  try {
    connection = await resolveConnection(io, globals);
    client = clientFor(connection, io);
  } catch (err) {
    // Said when a command talks to the control service, not before (`drover ca` never does).
    client = toDroverError(err);
  }
  return {
    stdout: io.stdout,
    stderr: io.stderr,
    cwd: io.cwd,
    get control(): ApiClient {
      if (client instanceof DroverError) throw client;
      return client;
    },
    ...(connection === undefined ? {} : { connection }),
    json: globals.json === true || output === 'json',
    wide: output === 'wide',
    env: io.env,
    sleep: io.sleep,
    ...(io.signal ? { signal: io.signal } : {}),
    ...(io.now ? { now: io.now } : {}),
  };
}

/**
 * The control service and the certificate to present (docs/DESIGN.md §23): each of the
 * server, CA, certificate and key from its flag, else its DROVER_* variable, else the
 * context (`--context`, DROVER_CONTEXT, or the file's current context) — whose files apply
 * only to its own server. An https server needs all three files; a plain http one none.
 */
async function resolveConnection(io: CliIo, globals: Record<string, unknown>): Promise<Connection> {
  const given = (flag: string, env: string) => (globals[flag] as string | undefined) ?? io.env[env];
  const explicit = { control: given('control', 'DROVER_CONTROL'), ca: given('ca', 'DROVER_CA'), cert: given('cert', 'DROVER_CERT'), key: given('key', 'DROVER_KEY') };
  const contextName = given('context', 'DROVER_CONTEXT');
  const needsFile = contextName !== undefined || explicit.control === undefined || ((explicit.control?.includes('https:') ?? false) && (!explicit.ca || !explicit.cert || !explicit.key));
  const path = clientConfigPath(io.env);
  const picked = needsFile ? pickContext(await readClientConfig(path), contextName, path) : null;
  // One control service or several (`--control a,b`, a context's `servers`): the client fails over (docs/DESIGN.md §29).
  let control: string[];
  try {
    control = explicit.control !== undefined ? parseControlEndpoints(explicit.control, '--control') : picked !== null ? contextEndpoints(picked) : [DEFAULT_CONTROL];
  } catch (err) {
    // The endpoint's own problem may already carry the example; say it once.
    const message = (err as Error).message;
    throw usageError(message.includes('(e.g. ') ? message : `${message} (e.g. ${DEFAULT_CONTROL})`);
  }
  const named = picked === null ? [] : contextEndpoints(picked);
  const ours = picked !== null && control.every((c) => named.includes(c)) ? picked : null;
  const files = { ca: explicit.ca ?? ours?.ca, cert: explicit.cert ?? ours?.cert, key: explicit.key ?? ours?.key };
  return {
    control,
    ...(files.ca === undefined ? {} : { ca: files.ca }),
    ...(files.cert === undefined ? {} : { cert: files.cert }),
    ...(files.key === undefined ? {} : { key: files.key }),
    ...(ours?.name === undefined ? {} : { context: ours.name }),
  };
}

function clientFor(connection: Connection, io: CliIo): ApiClient {
  const { control } = connection;
  if (!anyHttps(control)) return new ApiClient({ baseUrl: control });
  const missing = (['ca', 'cert', 'key'] as const).filter((f) => connection[f] === undefined);
  if (missing.length > 0) {
    throw usageError(`the control service at ${endpointsText(control)} needs a client certificate: give ${missing.map((f) => `--${f}`).join(', ')} (or DROVER_CA, DROVER_CERT, DROVER_KEY), or a context in ${clientConfigPath(io.env)} (drover cluster up writes one; drover ca user NAME makes a certificate)`);
  }
  return new ApiClient({ baseUrl: control, tls: readTlsIdentity({ ca: connection.ca!, cert: connection.cert!, key: connection.key! }) });
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
  // An answer may carry the same problem as an `errors` string and as an issue: say it once.
  return [...new Set(lines)];
}

/**
 * The control service answers an unknown application with Flocker's "Container not found."
 * (the v1 API's text, kept for Flocker's clients); the CLI names what it looked for, in
 * drover's words, and where the known ones are listed.
 */
function notFound(err: DroverError): DroverError {
  const name = err.detail.name;
  if (err.code !== 'DROVER_CONTAINER_NOT_FOUND' || typeof name !== 'string' || err.message !== 'Container not found.') return err;
  return new DroverError('DROVER_CONTAINER_NOT_FOUND', `no application "${name}" (drover status lists them)`, { detail: err.detail, cause: err });
}

/** "Cannot reach" said once, with the low-level reason and what to set. */
function unreachable(err: DroverError): DroverError {
  const tried = Array.isArray(err.detail.endpoints) ? (err.detail.endpoints as { url: string; why: string }[]) : [];
  if (tried.length > 1) {
    const each = tried.map((t) => `${t.url} (${t.why === 'TimeoutError' ? 'no answer in time' : t.why})`).join(', ');
    return new DroverError('DROVER_CONTROL_UNREACHABLE', `cannot reach any control service: ${each}; set --control or DROVER_CONTROL`, { cause: err });
  }
  const inner = (err.cause as { name?: string; cause?: { code?: string; message?: string } } | undefined) ?? {};
  const why = inner.name === 'TimeoutError' ? 'no answer in time' : (inner.cause?.code ?? inner.cause?.message ?? inner.name ?? 'no answer');
  const base = /control service at (\S+) /.exec(err.message)?.[1] ?? 'its address';
  return new DroverError('DROVER_CONTROL_UNREACHABLE', `cannot reach the control service at ${base} (${why}); set --control or DROVER_CONTROL`, { cause: err });
}

/** commander's program as completion needs it: names, flags (and the values of `-o`), subcommands. */
function treeOf(command: Commander): CommandTree {
  const flags: string[] = [];
  const values: Record<string, string[]> = {};
  for (const option of command.options) {
    for (const flag of [option.long, option.short]) {
      if (flag === undefined) continue;
      flags.push(flag);
      if (option.required || option.optional) values[flag] = flag === '-o' || flag === '--output' ? OUTPUTS : [];
    }
  }
  return { name: command.name(), summary: command.description(), flags, values, subcommands: command.commands.map(treeOf) };
}

/** Global flags that take the next word as their value. */
const VALUED_GLOBALS = new Set(['--control', '--context', '--ca', '--cert', '--key', '-o', '--output']);

/** The index of the command word, skipping global flags (and their values) before it. */
function commandIndex(argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (VALUED_GLOBALS.has(arg)) i++;
    else if (!arg.startsWith('-')) return i;
  }
  return -1;
}

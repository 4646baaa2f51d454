import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print } from '../context.ts';

const USAGE = 'drover logs <application> [-f] [--tail N] [--json]';

/**
 * `drover logs <application>`: the container's output, from the agent of the node it runs
 * on now (through the control service, docs/DESIGN.md §27) — its stdout here on stdout, its
 * stderr on stderr, as `docker logs` does. `--tail N`: only the last N lines; `-f`: then each
 * new one until interrupted. `--json`: one `{"stream","text"}` object per line, on stdout.
 */
export const logsCommand: Command = {
  name: 'logs',
  summary: "show an application's output, wherever it runs now; -f follows it",
  usage: USAGE,
  needs: 'an application',
  configure: (command) =>
    command
      .argument('<application>', 'the application')
      .option('-f, --follow', 'keep printing its output as it comes')
      .option('--tail <lines>', 'only the last this many lines (default: all)'),
  async run(ctx, values, positionals) {
    if (positionals.length !== 1) throw usageError(positionals.length === 0 ? 'logs needs an application' : `logs takes one application, got ${positionals.length}: ${positionals.join(' ')}`, USAGE);
    const tailText = values.tail as string | undefined;
    if (tailText !== undefined && !/^\d+$/.test(tailText)) throw usageError(`--tail "${tailText}" is not a number of lines`, USAGE);
    if (tailText !== undefined && Number(tailText) > 100_000) throw usageError(`--tail ${tailText} is more than 100000 lines`, USAGE);
    const follow = values.follow === true;
    for await (const line of ctx.control.applicationLogs(positionals[0]!, { follow, ...(tailText === undefined ? {} : { tail: Number(tailText) }), ...(ctx.signal ? { signal: ctx.signal } : {}) })) {
      if (ctx.json) print(ctx.stdout, JSON.stringify(line));
      else print(line.stream === 'stderr' ? ctx.stderr : ctx.stdout, line.text);
    }
    return 0;
  },
};

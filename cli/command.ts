import type { ParseArgsConfig } from 'node:util';
import type { CliContext } from './context.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

/** One `drover <name>` command: its own flags, and a run that returns the exit code. */
export interface Command {
  name: string;
  summary: string;
  /** The usage lines, without the leading `usage: `. */
  usage: string;
  options: Options;
  run(ctx: CliContext, values: Values, positionals: string[]): Promise<number>;
}

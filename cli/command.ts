import type { Command as Commander } from 'commander';
import type { CliContext } from './context.ts';

/** A command's options as commander parsed them (`--dry-run` is `dryRun`, `--no-wait` is `wait: false`). */
export type Values = Record<string, unknown>;

/**
 * One `drover <name>` command (or `drover <parent> <name>`): what commander needs to parse
 * it and generate its help, and a run that returns the exit code.
 */
export interface Command {
  name: string;
  summary: string;
  /** The usage line, without the leading `usage: ` (printed after a usage error, and in --help). */
  usage: string;
  /**
   * What its arguments are, for "<name> needs …" when one is missing
   * ("an application and a node"). Absent: it takes none.
   */
  needs?: string;
  /** Declares its arguments and options on commander's command. */
  configure?(command: Commander): void;
  /** Either a run, or subcommands (`drover datasets list`). */
  run?(ctx: CliContext, values: Values, positionals: string[]): Promise<number>;
  subcommands?: Command[];
}

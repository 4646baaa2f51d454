import type { ApiClient } from '#common/api-client.ts';

/** Where a command writes: process.stdout/stderr in main.ts, buffers in tests. */
export interface Output {
  write(text: string): unknown;
  /** A terminal gets a redrawn progress line; a pipe or file gets one line per change. */
  isTTY?: boolean;
  /** A terminal's width (the progress line fits it). */
  columns?: number;
}

/** Everything a command may touch. Commands never read `process` themselves. */
export interface CliContext {
  stdout: Output;
  stderr: Output;
  cwd: string;
  control: ApiClient;
  /** `--json` (or `-o json`): print the API's answer as JSON instead of tables. */
  json: boolean;
  /** `-o wide`: tables with more columns (full ids, labels, every application). */
  wide: boolean;
  /**
   * Where the CLI would talk and with which files, as resolved from flags, DROVER_* and the
   * context, without connecting (`drover ui`). Absent when they could not be resolved.
   */
  connection?: Connection;
  /** Every command, its subcommands and options (for `drover completion`). */
  tree?: CommandTree;
  /** The environment Compose variables are read from (the shell's, in main.ts). */
  env: Record<string, string | undefined>;
  /** Waits between polls; a parameter so tests need not wait. */
  sleep(ms: number): Promise<void>;
  /** Ends a command that would run until interrupted (`events -f`, `logs -f`); tests give one. */
  signal?: AbortSignal;
  /** The time, ms since the epoch (rates, ETA, phase times); Date.now unless a test gives one. */
  now?(): number;
}

/** The control services and the client files a command line resolves to. */
export interface Connection {
  control: string[];
  ca?: string;
  cert?: string;
  key?: string;
  /** The context these came from, if any. */
  context?: string;
}

export function print(out: Output, text = ''): void {
  out.write(`${text}\n`);
}

export function printJson(out: Output, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A command as completion sees it: its words, flags and subcommands (built from commander's program). */
export interface CommandTree {
  name: string;
  summary: string;
  /** Long and short flags: `--json`, `-o`. */
  flags: string[];
  /** Flags that take a value, and the values they take when they are few (`-o`: wide, json). */
  values: Record<string, string[]>;
  subcommands: CommandTree[];
}

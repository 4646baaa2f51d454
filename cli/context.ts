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
  /** `--json`: print the API's answer as JSON instead of tables. */
  json: boolean;
  /** The environment Compose variables are read from (the shell's, in main.ts). */
  env: Record<string, string | undefined>;
  /** Waits between polls; a parameter so tests need not wait. */
  sleep(ms: number): Promise<void>;
  /** The time, ms since the epoch (rates, ETA, phase times); Date.now unless a test gives one. */
  now?(): number;
}

export function print(out: Output, text = ''): void {
  out.write(`${text}\n`);
}

export function printJson(out: Output, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

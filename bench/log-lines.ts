import { readFileSync } from 'node:fs';

/** One pino record of drover's logs: its time (ms since the epoch), its message and the rest. */
export interface LogLine {
  time: number;
  msg: string;
  [key: string]: unknown;
}

/** The pino records in a log's text; a line that is not JSON (a torn last line, a copy cut short) is skipped. */
export function parseLogLines(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      // not a whole record
    }
  }
  return out;
}

/** The records of log file `path`; none when it cannot be read. */
export function readLogLines(path: string): LogLine[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return parseLogLines(text);
}

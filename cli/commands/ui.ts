import { basename, dirname, join } from 'node:path';
import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print, printJson, type Connection } from '../context.ts';

const USAGE = 'drover ui [--json]';

/** What `drover ui` says: where the dashboard is, and how a browser gets the user certificate. */
export interface UiAnswer {
  url: string;
  /** Every control service of the context (a browser takes any of them). */
  urls: string[];
  /** The one command that makes the browser's PKCS#12 file from the user certificate; null without one. */
  pkcs12: { file: string; command: string } | null;
  /** The cluster CA the browser should trust as an authority; null without one. */
  ca: string | null;
}

/**
 * `drover ui`: the dashboard's URL for the current context (docs/DESIGN.md §26) and the one
 * line that gives a browser the user certificate (openssl's PKCS#12 export, with the CA in the
 * bundle), printed, not run. No network access and no browser: it reads only what the flags,
 * DROVER_* and the context name. Pure apart from printing.
 */
export const uiCommand: Command = {
  name: 'ui',
  summary: 'print the web dashboard\'s URL and how to give your browser the user certificate',
  usage: USAGE,
  async run(ctx, _values, positionals) {
    if (positionals.length > 0) throw usageError(`ui takes no arguments, got "${positionals[0]}"`, USAGE);
    if (ctx.connection === undefined) {
      // The flags, DROVER_* or the config file could not be read: the client's error says why.
      void ctx.control;
      throw usageError('no control service is configured: give --control, DROVER_CONTROL or a context (drover cluster up writes one)', USAGE);
    }
    const answer = uiAnswer(ctx.connection);
    if (ctx.json) {
      printJson(ctx.stdout, answer);
      return 0;
    }
    print(ctx.stdout, answer.url);
    if (answer.pkcs12 !== null) {
      print(ctx.stdout, `Give your browser your certificate (import ${answer.pkcs12.file}; it asks for the export password you set):`);
      print(ctx.stdout, `  ${answer.pkcs12.command}`);
    } else if (answer.url.startsWith('https:')) {
      print(ctx.stdout, 'This context names no user certificate: drover ca user NAME makes one.');
    }
    if (answer.ca !== null) print(ctx.stdout, `and trust the cluster CA ${answer.ca} as an authority (or accept the server's certificate once).`);
    return 0;
  },
};

/** The answer for one resolved connection. Pure. */
export function uiAnswer(connection: Connection): UiAnswer {
  const urls = connection.control.map((c) => `${c.replace(/\/+$/, '')}/ui`);
  const https = connection.control.some((c) => c.startsWith('https:'));
  const { cert, key, ca } = connection;
  let pkcs12: UiAnswer['pkcs12'] = null;
  if (https && cert !== undefined && key !== undefined) {
    const file = join(dirname(cert), `${basename(cert).replace(/\.(crt|pem)$/, '')}.p12`);
    const parts = ['openssl', 'pkcs12', '-export', '-in', cert, '-inkey', key, ...(ca === undefined ? [] : ['-certfile', ca]), '-out', file];
    pkcs12 = { file, command: parts.map(shellWord).join(' ') };
  }
  return { url: urls[0]!, urls, pkcs12, ca: https ? (ca ?? null) : null };
}

/** A word as a POSIX shell reads it back unchanged: bare when safe, else single-quoted. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

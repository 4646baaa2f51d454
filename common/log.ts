import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * The root logger of a process (docs/DESIGN.md §13). Child loggers per subsystem are
 * made with `log.child({ subsystem })`. Secrets are redacted here, once.
 */
export function createLogger(name: string, options: LoggerOptions = {}, destination?: DestinationStream): Logger {
  const settings: LoggerOptions = {
    name,
    level: process.env.DROVER_LOG_LEVEL ?? 'info',
    redact: {
      paths: [
        '*.privateKey', '*.password', '*.passphrase', '*.token', 'privateKey', 'password', 'token', '*.key',
        // Files that travel with a project and secret environment values (docs/DESIGN.md §22):
        // contents, a container's environment, and a deploy body's uploads never reach a log.
        'content_base64', '*.content_base64', 'secretEnv', '*.secretEnv', 'env', '*.env', 'spec.env', '*.spec.env', 'body.files', '*.body.files', 'bytes', '*.bytes',
      ],
      censor: '[redacted]',
    },
    ...options,
  };
  // A destination other than stdout: drover-receive's stdout is its protocol.
  return destination ? pino(settings, destination) : pino(settings);
}

/** A logger that drops everything; for tests where logging is not the behaviour. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Correlation (docs/DESIGN.md §25): every pino record about one migration, failover or API
 * request carries the same `corr` field in every process — the migration's (or failover
 * record's) id, or the request's id — so `grep <id>` over all logs tells the whole story.
 * A client that acts for a migration sends its id in this header; the control service
 * answers every request with the id it logged it under.
 */
export const CORR_HEADER = 'x-drover-corr';

/** What a `corr` may be: a migration's uuid or a request's short id, nothing a header could smuggle. */
export const CORR_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

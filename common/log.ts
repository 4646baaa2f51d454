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
  return destination === undefined ? pino(settings) : pino(settings, destination);
}

/** A logger that drops everything; for tests where logging is not the behaviour. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

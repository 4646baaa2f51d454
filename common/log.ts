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
      paths: ['*.privateKey', '*.password', '*.passphrase', '*.token', 'privateKey', 'password', 'token', '*.key'],
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

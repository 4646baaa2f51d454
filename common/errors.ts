/**
 * The one error class of drover (docs/DESIGN.md §11).
 *
 * Errors are classified once, where an outside library or command is called (the adapter);
 * everything above reads `code` and `retryable` and never parses messages.
 */
export type ErrorCode = `DROVER_${Uppercase<string>}`;

export interface DroverErrorOptions {
  /** True when the same call may succeed later (EBUSY, a cut connection, a timeout). */
  retryable?: boolean;
  /** Structured facts for logs and API bodies: names, paths, exit codes. Never secrets. */
  detail?: Record<string, unknown>;
  cause?: unknown;
}

export class DroverError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly detail: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: DroverErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DroverError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.detail = options.detail ?? {};
  }

  toJSON(): { code: ErrorCode; message: string; retryable: boolean; detail: Record<string, unknown> } {
    return { code: this.code, message: this.message, retryable: this.retryable, detail: this.detail };
  }
}

export function isDroverError(err: unknown, code?: ErrorCode): err is DroverError {
  return err instanceof DroverError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a DroverError, keeping an existing one as it is. */
export function toDroverError(err: unknown, code: ErrorCode = 'DROVER_INTERNAL'): DroverError {
  if (err instanceof DroverError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new DroverError(code, message, { cause: err });
}

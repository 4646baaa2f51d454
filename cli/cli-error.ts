import { DroverError } from '#common/errors.ts';

/** A command line drover cannot run: unknown command or flag, missing argument or file. Exit 2. */
export function usageError(message: string, usage?: string): DroverError {
  return new DroverError('DROVER_USAGE', message, { detail: usage === undefined ? {} : { usage } });
}

/** The exit code for an error: 2 for a bad command line, 1 for everything else. */
export function exitCodeOf(err: DroverError): number {
  return err.code === 'DROVER_USAGE' ? 2 : 1;
}

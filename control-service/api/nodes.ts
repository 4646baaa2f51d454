/** Flocker's `/v1/version` and node endpoints. */
import { DroverError } from '#common/errors.ts';
import { nodeStates } from '../cluster/state-answers.ts';
import type { Control } from '../control.ts';
import type { Router } from '../http/router.ts';
import { indexOf } from '../desired/desired-index.ts';
import { nodeOpRoutes, onNode } from './node-ops.ts';
import { keyChangeReason } from '../control.ts';
import type { NodeStateAnswer } from '#common/api.ts';

/** A refused host-key change is one of the node's problems (docs/DESIGN.md §23). */
function withTrustProblems(states: NodeStateAnswer[], control: Control): NodeStateAnswer[] {
  if (control.keyChangesRefused.size === 0) return states;
  return states.map((s) => {
    const refused = control.keyChangesRefused.get(s.uuid);
    if (refused === undefined) return s;
    return { ...s, problems: [...(s.problems ?? []), { subject: `node:${s.uuid}`, kind: 'blocked', reason: keyChangeReason(refused) }] };
  });
}

/** The Flocker release whose v1 API drover answers. */
export const FLOCKER_API_VERSION = '1.15.0';

export function nodeRoutes(router: Router, control: Control, droverVersion: string): void {
  router.handle('version', async () => ({ flocker: FLOCKER_API_VERSION, drover: droverVersion }));

  // A cordoned node says so (and how many applications are left on it); Flocker's fields are unchanged.
  router.handle('nodes', async () => {
    const desired = control.desired;
    const index = indexOf(desired);
    const states = withTrustProblems(nodeStates(desired, control.observed), control);
    if (!desired.nodes.some((n) => n.cordon !== undefined || n.host_key_accepted !== undefined)) return states;
    return states.map((s) => {
      const entry = index.nodes.get(s.uuid);
      const accepted = entry?.host_key_accepted;
      const withKey = accepted === undefined ? s : { ...s, host_key_accepted: accepted };
      const cordon = entry?.cordon;
      if (cordon === undefined) return withKey;
      const left = onNode(desired, s.uuid).length;
      return { ...withKey, cordoned: true, draining: cordon.drain, applications_left: left };
    });
  });

  nodeOpRoutes(router, control);

  router.handle('nodeByEra', async ({ params }) => {
    const uuid = control.observed.byEra(params.era);
    if (uuid === null) throw new DroverError('DROVER_ERA_NOT_FOUND', 'No node found with given era.', { detail: { era: params.era } });
    return { uuid };
  });
}

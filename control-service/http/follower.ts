/**
 * What a follower answers (docs/DESIGN.md §28): the reads of the desired configuration, which
 * it holds from etcd as the leader does. Everything else — writes, agents' reports and
 * long-polls, observed state, events — is the leader's: a follower answers 307 with the same
 * path on the leader (clients that follow redirects re-send the request there), or 503
 * DROVER_NO_LEADER while there is none.
 */
import type { FastifyInstance } from 'fastify';
import { ROUTES, type RouteKey } from '#common/api-routes.ts';
import type { ErrorBody } from '#common/api.ts';
import type { Leadership } from '../cluster/leadership.ts';

export const FOLLOWER_ROUTES: ReadonlySet<RouteKey> = new Set<RouteKey>(['version', 'datasets', 'containers', 'leases', 'migrations', 'migration', 'openapi']);

const served = new Set([...FOLLOWER_ROUTES].map((key) => `${ROUTES[key].method} ${ROUTES[key].path}`));

export function sendFollowersToLeader(app: FastifyInstance, leadership: Leadership): void {
  app.addHook('onRequest', async (request, reply) => {
    if (leadership.isLeader()) return;
    const template = request.routeOptions.url;
    if (template === undefined || served.has(`${request.method} ${template}`)) return;
    const leader = leadership.leaderUrl();
    if (leader === null) {
      // Say why when the election itself fails (etcd unreachable or without quorum): that is what the operator must fix.
      const why = leadership.noLeaderReason?.() ?? null;
      return reply
        .code(503)
        .send({ description: `No control service is leader right now${why === null ? '' : ` (${why})`}; try again in a few seconds.`, code: 'DROVER_NO_LEADER', ...(why === null ? {} : { detail: { reason: why } }) } satisfies ErrorBody);
    }
    return reply
      .code(307)
      .header('location', `${leader.replace(/\/$/, '')}${request.url}`)
      .send({ description: `This control service is a follower; the leader is ${leader}.`, code: 'DROVER_NOT_LEADER', detail: { leader } } satisfies ErrorBody);
  });
}

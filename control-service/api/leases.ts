/**
 * Flocker's lease endpoints. The store keeps an absolute expiry (`expires_at`); the wire
 * form is Flocker's `expires`, seconds remaining: translated here, at the edge.
 */
import { z } from 'zod';
import { ErrorBody, LeaseAnswer, LeaseBody } from '#common/api.ts';
import { Uuid, type Lease } from '#common/model.ts';
import { Control } from '../control.ts';
import { acquireLease, isLive, releaseLease } from '../desired/leases.ts';
import { requestedTag, withTag } from '../http/conditional.ts';
import type { Router } from '../http/router.ts';

const error = (description: string) => ({ description, schema: ErrorBody });

export function toWire(lease: Lease, now: number): LeaseAnswer {
  return { dataset_id: lease.dataset_id, node_uuid: lease.node_uuid, expires: lease.expires_at === null ? null : Math.max(0, (lease.expires_at - now) / 1000) };
}

export function leaseRoutes(router: Router, control: Control): void {
  router.route(
    { method: 'GET', url: '/v1/configuration/leases', tag: 'leases', summary: 'Leases; expires is seconds remaining (null: never)', answers: { 200: { description: 'leases', schema: z.array(LeaseAnswer) } } },
    async ({ reply }) => {
      const snap = control.snapshot;
      const now = control.clock();
      withTag(reply, snap.tag);
      return snap.desired.leases.filter((l) => isLive(l, now)).map((l) => toWire(l, now));
    },
  );

  router.route(
    {
      method: 'POST',
      url: '/v1/configuration/leases',
      tag: 'leases',
      summary: 'Take or renew a lease: while held, nothing moves the dataset away from the node or deletes it',
      body: LeaseBody,
      answers: { 201: { description: 'new lease', schema: LeaseAnswer }, 200: { description: 'renewed', schema: LeaseAnswer }, 404: error('no such dataset'), 409: error('held by another node, or the dataset is moving') },
    },
    async ({ body, request, reply }) => {
      let out: { lease: Lease; created: boolean } | undefined;
      const snap = await control.change((d, ctx) => {
        Control.requireTag(ctx, requestedTag(request));
        const result = acquireLease(d, body, ctx.now);
        out = result;
        return result.desired;
      });
      return withTag(reply, snap.tag).code(out!.created ? 201 : 200).send(toWire(out!.lease, control.clock()));
    },
  );

  router.route(
    {
      method: 'DELETE',
      url: '/v1/configuration/leases/:dataset_id',
      tag: 'leases',
      summary: 'Release a lease',
      params: z.object({ dataset_id: Uuid }),
      answers: { 200: { description: 'the released lease', schema: LeaseAnswer }, 404: error('no lease on this dataset') },
    },
    async ({ params, request, reply }) => {
      let released: Lease | undefined;
      const snap = await control.change((d, ctx) => {
        Control.requireTag(ctx, requestedTag(request));
        const result = releaseLease(d, params.dataset_id, ctx.now);
        released = result.lease;
        return result.desired;
      });
      return withTag(reply, snap.tag).code(200).send(toWire(released!, control.clock()));
    },
  );
}

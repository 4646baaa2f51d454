/**
 * Flocker's lease endpoints. The store keeps an absolute expiry (`expires_at`); the wire
 * form is Flocker's `expires`, seconds remaining: translated here, at the edge.
 */
import type { LeaseAnswer } from '#common/api.ts';
import type { Lease } from '#common/model.ts';
import { Control } from '../control.ts';
import { acquireLease, isLive, releaseLease } from '../desired/leases.ts';
import { requestedTag, withTag } from '../http/conditional.ts';
import type { Router } from '../http/router.ts';

/**
 * `expires`: the seconds remaining at `now`, at Flocker's resolution (a Python timedelta:
 * microseconds). Rounding to it also removes the float error of `now + s * 1000`, so a lease
 * answered at the instant it was taken or renewed (the change's `now`) shows exactly the
 * seconds asked: 30, not 29.998 nor 30.000000001.
 */
export function toWire(lease: Lease, now: number): LeaseAnswer {
  return { dataset_id: lease.dataset_id, node_uuid: lease.node_uuid, expires: lease.expires_at === null ? null : Math.max(0, Math.round((lease.expires_at - now) * 1000) / 1e6) };
}

export function leaseRoutes(router: Router, control: Control): void {
  router.handle('leases', async ({ reply }) => {
    const snap = control.snapshot;
    const now = control.clock();
    withTag(reply, snap.tag);
    return snap.desired.leases.filter((l) => isLive(l, now)).map((l) => toWire(l, now));
  });

  router.handle('acquireLease', async ({ body, request, reply }) => {
    // Answered as of the instant the lease was taken (the change's `now`, from which its
    // expiry was computed), not after the commit: `expires` is then the number asked.
    let out: { lease: Lease; created: boolean; now: number } | undefined;
    const snap = await control.change((d, ctx) => {
      Control.requireTag(ctx, requestedTag(request));
      const result = acquireLease(d, body, ctx.now);
      out = { ...result, now: ctx.now };
      return result.desired;
    });
    return withTag(reply, snap.tag).code(out!.created ? 201 : 200).send(toWire(out!.lease, out!.now));
  });

  router.handle('releaseLease', async ({ params, request, reply }) => {
    let released: { lease: Lease; now: number } | undefined;
    const snap = await control.change((d, ctx) => {
      Control.requireTag(ctx, requestedTag(request));
      const result = releaseLease(d, params.dataset_id, ctx.now);
      released = { lease: result.lease, now: ctx.now };
      return result.desired;
    });
    return withTag(reply, snap.tag).code(200).send(toWire(released!.lease, released!.now));
  });
}

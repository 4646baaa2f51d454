/** Flocker's container endpoints: `/v1/configuration/containers` and `/v1/state/containers`. */
import { Control } from '../control.ts';
import { containerStates } from '../cluster/state-answers.ts';
import { createApplication, deleteApplication, moveApplication } from '../desired/applications.ts';
import { indexOf } from '../desired/desired-index.ts';
import { BodyCache } from '../http/body-cache.ts';
import { requestedTag, withTag } from '../http/conditional.ts';
import { sendJson, type Router } from '../http/router.ts';
import { listBuffer } from '../store/encode.ts';

export function containerRoutes(router: Router, control: Control): void {
  router.handle('containers', async ({ reply }) => {
    const snap = control.snapshot;
    return sendJson(withTag(reply, snap.tag), listBuffer(snap.desired.applications));
  });

  router.handle('createContainer', async ({ body, request, reply }) => {
    const snap = await control.change((d, ctx) => {
      Control.requireTag(ctx, requestedTag(request));
      return createApplication(d, body);
    });
    return withTag(reply, snap.tag).code(201).send(indexOf(snap.desired).applications.get(body.name) ?? body);
  });

  router.handle('moveContainer', async ({ params, body, request, reply }) => {
    let answer: unknown;
    const snap = await control.change((d, ctx) => {
      Control.requireTag(ctx, requestedTag(request));
      const out = moveApplication(d, params.name, body.node_uuid, ctx.start);
      answer = { ...out.application, migration: out.migration };
      return out.desired;
    });
    return withTag(reply, snap.tag).code(200).send(answer);
  });

  router.handle('deleteContainer', async ({ params, request, reply }) => {
    const snap = await control.change((d, ctx) => {
      Control.requireTag(ctx, requestedTag(request));
      return deleteApplication(d, params.name, ctx.now);
    });
    return withTag(reply, snap.tag).code(200).send();
  });

  const state = new BodyCache();
  router.handle('containerStates', async ({ reply }) =>
      sendJson(reply, state.get(`${control.snapshot.version}:${control.observed.version}`, () => JSON.stringify(containerStates(control.desired, control.observed)))));
}

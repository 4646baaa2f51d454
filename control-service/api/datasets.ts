/** Flocker's dataset endpoints: `/v1/configuration/datasets` and `/v1/state/datasets`. */
import type { Dataset } from '#common/model.ts';
import { Control } from '../control.ts';
import { datasetStates } from '../cluster/state-answers.ts';
import { datasetDetails } from '../cluster/dataset-details.ts';
import { createDataset, deleteDataset, moveDataset } from '../desired/datasets.ts';
import { BodyCache } from '../http/body-cache.ts';
import { requestedTag, withTag } from '../http/conditional.ts';
import { sendJson, type Router } from '../http/router.ts';
import { listBuffer } from '../store/encode.ts';
import { indexOf } from '../desired/desired-index.ts';

export function datasetRoutes(router: Router, control: Control): void {
  router.handle('datasets', async ({ reply }) => {
    const snap = control.snapshot;
    return sendJson(withTag(reply, snap.tag), listBuffer(snap.desired.datasets));
  });

  router.handle('createDataset', async ({ body, request, reply }) => {
    let created: Dataset | undefined;
    const snap = await control.change((d, ctx) => {
      Control.requireTag(ctx, requestedTag(request));
      const out = createDataset(d, body);
      created = out.dataset;
      return out.desired;
    });
    return withTag(reply, snap.tag).code(201).send(indexOf(snap.desired).datasets.get(created!.dataset_id) ?? created);
  });

  router.handle('moveDataset', async ({ params, body, request, reply }) => {
    let answer: unknown;
    const snap = await control.change((d, ctx) => {
      Control.requireTag(ctx, requestedTag(request));
      const out = moveDataset(d, params.dataset_id, body.primary, ctx.start);
      answer = { ...out.dataset, migration: out.migration };
      return out.desired;
    });
    return withTag(reply, snap.tag).code(200).send(answer);
  });

  router.handle('deleteDataset', async ({ params, request, reply }) => {
    let deleted: Dataset | undefined;
    const snap = await control.change((d, ctx) => {
      Control.requireTag(ctx, requestedTag(request));
      const out = deleteDataset(d, params.dataset_id, ctx.now);
      deleted = out.dataset;
      return out.desired;
    });
    return withTag(reply, snap.tag).code(200).send(deleted);
  });

  const state = new BodyCache();
  router.handle('datasetStates', async ({ reply }) => sendJson(reply, state.get(String(control.observed.version), () => JSON.stringify(datasetStates(control.observed)))));

  const details = new BodyCache();
  router.handle('datasetDetails', async ({ reply }) => {
    const snap = control.snapshot;
    const reports = [...control.observed.all()].map((r) => r.report);
    return sendJson(reply, details.get(`${snap.version}/${control.observed.version}`, () => JSON.stringify(datasetDetails(snap.desired, reports))));
  });
}

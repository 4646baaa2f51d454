/** Flocker's dataset endpoints: `/v1/configuration/datasets` and `/v1/state/datasets`. */
import { z } from 'zod';
import { CreateDatasetBody, DatasetMoveAnswer, DatasetState, ErrorBody, MoveDatasetBody } from '#common/api.ts';
import { Dataset, Uuid } from '#common/model.ts';
import { Control } from '../control.ts';
import { datasetStates } from '../cluster/state-answers.ts';
import { createDataset, deleteDataset, moveDataset } from '../desired/datasets.ts';
import { BodyCache } from '../http/body-cache.ts';
import { requestedTag, withTag } from '../http/conditional.ts';
import { sendJson, type Router } from '../http/router.ts';
import { listBuffer } from '../store/encode.ts';
import { indexOf } from '../desired/desired-index.ts';

const DatasetParams = z.object({ dataset_id: Uuid });
const error = (description: string) => ({ description, schema: ErrorBody });
const tagHeader = { 'X-If-Configuration-Matches': 'apply only if the configuration still has this tag (else 412)' };

export function datasetRoutes(router: Router, control: Control): void {
  router.route(
    { method: 'GET', url: '/v1/configuration/datasets', tag: 'datasets', summary: 'The datasets of the desired configuration (X-Configuration-Tag header)', answers: { 200: { description: 'datasets', schema: z.array(Dataset) } } },
    async ({ reply }) => {
      const snap = control.snapshot;
      return sendJson(withTag(reply, snap.tag), listBuffer(snap.desired.datasets));
    },
  );

  router.route(
    {
      method: 'POST',
      url: '/v1/configuration/datasets',
      tag: 'datasets',
      summary: 'Create a dataset (the server picks dataset_id when none is given)',
      body: CreateDatasetBody,
      headers: tagHeader,
      answers: { 201: { description: 'created', schema: Dataset }, 400: error('bad body'), 409: error('dataset_id in use'), 412: error('the configuration changed') },
    },
    async ({ body, request, reply }) => {
      let created: Dataset | undefined;
      const snap = await control.change((d, ctx) => {
        Control.requireTag(ctx, requestedTag(request));
        const out = createDataset(d, body);
        created = out.dataset;
        return out.desired;
      });
      return withTag(reply, snap.tag).code(201).send(indexOf(snap.desired).datasets.get(created!.dataset_id) ?? created);
    },
  );

  router.route(
    {
      method: 'POST',
      url: '/v1/configuration/datasets/:dataset_id',
      tag: 'datasets',
      summary: 'Move a dataset to another primary: a migration carries its data; primary changes at handoff',
      params: DatasetParams,
      body: MoveDatasetBody,
      headers: tagHeader,
      answers: {
        200: { description: 'the dataset as stored now, and its migration', schema: DatasetMoveAnswer },
        404: error('no such dataset'),
        405: error('the dataset was deleted'),
        409: error('leased elsewhere, mounted by a container, or moving elsewhere'),
        412: error('the configuration changed'),
      },
    },
    async ({ params, body, request, reply }) => {
      let answer: unknown;
      const snap = await control.change((d, ctx) => {
        Control.requireTag(ctx, requestedTag(request));
        const out = moveDataset(d, params.dataset_id, body.primary, ctx.start);
        answer = { ...out.dataset, migration: out.migration };
        return out.desired;
      });
      return withTag(reply, snap.tag).code(200).send(answer);
    },
  );

  router.route(
    {
      method: 'DELETE',
      url: '/v1/configuration/datasets/:dataset_id',
      tag: 'datasets',
      summary: 'Soft-delete a dataset (agents then destroy their copies); idempotent',
      params: DatasetParams,
      headers: tagHeader,
      answers: { 200: { description: 'the dataset, deleted', schema: Dataset }, 404: error('no such dataset'), 409: error('leased, mounted or moving'), 412: error('the configuration changed') },
    },
    async ({ params, request, reply }) => {
      let deleted: Dataset | undefined;
      const snap = await control.change((d, ctx) => {
        Control.requireTag(ctx, requestedTag(request));
        const out = deleteDataset(d, params.dataset_id, ctx.now);
        deleted = out.dataset;
        return out.desired;
      });
      return withTag(reply, snap.tag).code(200).send(deleted);
    },
  );

  const state = new BodyCache();
  router.route(
    { method: 'GET', url: '/v1/state/datasets', tag: 'state', summary: 'Datasets as the agents see them; primary and path only where one node has it writable', answers: { 200: { description: 'dataset states', schema: z.array(DatasetState) } } },
    async ({ reply }) => sendJson(reply, state.get(String(control.observed.version), () => JSON.stringify(datasetStates(control.observed)))),
  );
}

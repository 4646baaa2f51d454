/** Flocker's container endpoints: `/v1/configuration/containers` and `/v1/state/containers`. */
import { z } from 'zod';
import { ContainerMoveAnswer, ContainerState, CreateContainerBody, ErrorBody, MoveContainerBody } from '#common/api.ts';
import { AppName, Application } from '#common/model.ts';
import { Control } from '../control.ts';
import { containerStates } from '../cluster/state-answers.ts';
import { createApplication, deleteApplication, moveApplication } from '../desired/applications.ts';
import { indexOf } from '../desired/desired-index.ts';
import { BodyCache } from '../http/body-cache.ts';
import { requestedTag, withTag } from '../http/conditional.ts';
import { sendJson, type Router } from '../http/router.ts';
import { listBuffer } from '../store/encode.ts';

const NameParams = z.object({ name: AppName });
const error = (description: string) => ({ description, schema: ErrorBody });
const tagHeader = { 'X-If-Configuration-Matches': 'apply only if the configuration still has this tag (else 412)' };

export function containerRoutes(router: Router, control: Control): void {
  router.route(
    { method: 'GET', url: '/v1/configuration/containers', tag: 'containers', summary: 'The applications of the desired configuration', answers: { 200: { description: 'containers', schema: z.array(Application) } } },
    async ({ reply }) => {
      const snap = control.snapshot;
      return sendJson(withTag(reply, snap.tag), listBuffer(snap.desired.applications));
    },
  );

  router.route(
    {
      method: 'POST',
      url: '/v1/configuration/containers',
      tag: 'containers',
      summary: 'Add an application; without node_uuid the scheduler places it',
      body: CreateContainerBody,
      headers: tagHeader,
      answers: {
        201: { description: 'created (with the node the scheduler chose, if it could)', schema: Application },
        400: error('bad body'),
        404: error('a volume names no dataset'),
        409: error('name or external port in use, duplicate link alias or local port, dataset on another node or used by another container'),
        412: error('the configuration changed'),
      },
    },
    async ({ body, request, reply }) => {
      const snap = await control.change((d, ctx) => {
        Control.requireTag(ctx, requestedTag(request));
        return createApplication(d, body);
      });
      return withTag(reply, snap.tag).code(201).send(indexOf(snap.desired).applications.get(body.name) ?? body);
    },
  );

  router.route(
    {
      method: 'POST',
      url: '/v1/configuration/containers/:name',
      tag: 'containers',
      summary: 'Move an application (and its datasets, with their data) to another node: starts a migration',
      params: NameParams,
      body: MoveContainerBody,
      headers: tagHeader,
      answers: {
        200: { description: 'the application as stored now (node_uuid changes at handoff), and its migration', schema: ContainerMoveAnswer },
        404: error('no such container or node'),
        409: error('leased elsewhere, or already moving elsewhere'),
        412: error('the configuration changed'),
      },
    },
    async ({ params, body, request, reply }) => {
      let answer: unknown;
      const snap = await control.change((d, ctx) => {
        Control.requireTag(ctx, requestedTag(request));
        const out = moveApplication(d, params.name, body.node_uuid, ctx.start);
        answer = { ...out.application, migration: out.migration };
        return out.desired;
      });
      return withTag(reply, snap.tag).code(200).send(answer);
    },
  );

  router.route(
    {
      method: 'DELETE',
      url: '/v1/configuration/containers/:name',
      tag: 'containers',
      summary: 'Remove an application; its datasets stay',
      params: NameParams,
      headers: tagHeader,
      answers: { 200: { description: 'removed (empty body)' }, 404: error('no such container'), 409: error('it is moving'), 412: error('the configuration changed') },
    },
    async ({ params, request, reply }) => {
      const snap = await control.change((d, ctx) => {
        Control.requireTag(ctx, requestedTag(request));
        return deleteApplication(d, params.name, ctx.now);
      });
      return withTag(reply, snap.tag).code(200).send();
    },
  );

  const state = new BodyCache();
  router.route(
    { method: 'GET', url: '/v1/state/containers', tag: 'state', summary: 'Containers as the agents see them, with running, health and published ports', answers: { 200: { description: 'container states', schema: z.array(ContainerState) } } },
    async ({ reply }) =>
      sendJson(reply, state.get(`${control.snapshot.version}:${control.observed.version}`, () => JSON.stringify(containerStates(control.desired, control.observed)))),
  );
}

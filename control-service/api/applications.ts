/** drover's application endpoints: status (with the scheduler's reasons) and move. */
import { z } from 'zod';
import { ApplicationStatus, ErrorBody, MoveApplicationAnswer, MoveApplicationBody, StartMigrationBody } from '#common/api.ts';
import { DroverError } from '#common/errors.ts';
import { AppName, Migration, Uuid } from '#common/model.ts';
import type { Control } from '../control.ts';
import { applicationStatus, applicationStatuses } from '../cluster/state-answers.ts';
import { findApplication, findMigration } from '../desired/lookups.ts';
import { moveApplication } from '../desired/applications.ts';
import { withTag } from '../http/conditional.ts';
import type { Router } from '../http/router.ts';

const error = (description: string) => ({ description, schema: ErrorBody });

export function applicationRoutes(router: Router, control: Control): void {
  const statuses = () => applicationStatuses(control.desired, control.observed, control.unschedulable);

  router.route(
    { method: 'GET', url: '/v1/drover/applications', tag: 'drover', summary: 'Every application: where it runs, its state, why it is not placed, its migration', answers: { 200: { description: 'statuses', schema: z.array(ApplicationStatus) } } },
    async () => statuses(),
  );

  router.route(
    {
      method: 'GET',
      url: '/v1/drover/applications/:name',
      tag: 'drover',
      summary: 'One application status',
      params: z.object({ name: AppName }),
      answers: { 200: { description: 'status', schema: ApplicationStatus }, 404: error('no such application') },
    },
    async ({ params }) => applicationStatus(control.desired, findApplication(control.desired, params.name), control.observed, control.unschedulable),
  );

  const move = async (name: string, to: string) => {
    let answer: MoveApplicationAnswer | undefined;
    const snap = await control.change((d, ctx) => {
      const out = moveApplication(d, name, to, ctx.start);
      answer = { application: out.application, migration: out.migration };
      return out.desired;
    });
    if (answer!.migration) control.log.info({ application: name, to, migration: answer!.migration.id }, 'move accepted');
    return { snap, answer: answer! };
  };

  router.route(
    {
      method: 'POST',
      url: '/v1/drover/applications/:name/move',
      tag: 'drover',
      summary: 'Move an application with its data: 202 with the migration, 200 when it is already there',
      params: z.object({ name: AppName }),
      body: MoveApplicationBody,
      answers: { 202: { description: 'migration started (or joined)', schema: MoveApplicationAnswer }, 200: { description: 'nothing to move', schema: MoveApplicationAnswer }, 404: error('no such application or node'), 409: error('leased elsewhere, or moving elsewhere') },
    },
    async ({ params, body, reply }) => {
      const { snap, answer } = await move(params.name, body.node_uuid);
      return withTag(reply, snap.tag).code(answer.migration ? 202 : 200).send(answer);
    },
  );

  router.route(
    { method: 'GET', url: '/v1/drover/migrations', tag: 'migrations', summary: 'Migrations, running and recent', answers: { 200: { description: 'migrations', schema: z.array(Migration) } } },
    async () => control.desired.migrations,
  );

  router.route(
    {
      method: 'POST',
      url: '/v1/drover/migrations',
      tag: 'migrations',
      summary: 'Move an application with its data (the CLI form of the move): 201 with the migration',
      body: StartMigrationBody,
      answers: { 201: { description: 'migration started (or joined)', schema: Migration }, 404: error('no such application or node'), 409: error('already there, leased elsewhere, or moving elsewhere') },
    },
    async ({ body, reply }) => {
      const { snap, answer } = await move(body.application, body.to);
      if (!answer.migration) {
        throw new DroverError('DROVER_NOTHING_TO_MOVE', `Application "${body.application}" already runs on node ${body.to}.`, { detail: { application: body.application, node_uuid: body.to } });
      }
      return withTag(reply, snap.tag).code(201).send(answer.migration);
    },
  );

  router.route(
    {
      method: 'GET',
      url: '/v1/drover/migrations/:id',
      tag: 'migrations',
      summary: 'One migration, with its phase and progress',
      params: z.object({ id: Uuid }),
      answers: { 200: { description: 'the migration', schema: Migration }, 404: error('no such migration') },
    },
    async ({ params }) => findMigration(control.desired, params.id),
  );
}

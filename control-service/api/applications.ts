/** drover's application endpoints: status (with the scheduler's reasons) and move. */
import type { MoveApplicationAnswer } from '#common/api.ts';
import { DroverError } from '#common/errors.ts';
import type { Control } from '../control.ts';
import { applicationStatus, applicationStatuses } from '../cluster/state-answers.ts';
import { findApplication, findMigration } from '../desired/lookups.ts';
import { moveApplication } from '../desired/applications.ts';
import { withTag } from '../http/conditional.ts';
import type { Router } from '../http/router.ts';

export function applicationRoutes(router: Router, control: Control): void {
  const statuses = () => applicationStatuses(control.desired, control.observed, control.unschedulable, control.replication());

  router.handle('applications', async () => statuses());

  router.handle('application', async ({ params }) => applicationStatus(control.desired, findApplication(control.desired, params.name), control.observed, control.unschedulable, control.replication()));

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

  router.handle('moveApplication', async ({ params, body, reply }) => {
    const { snap, answer } = await move(params.name, body.node_uuid);
    return withTag(reply, snap.tag).code(answer.migration ? 202 : 200).send(answer);
  });

  router.handle('migrations', async () => control.desired.migrations);

  router.handle('startMigration', async ({ body, reply }) => {
    const { snap, answer } = await move(body.application, body.to);
    if (!answer.migration) {
      throw new DroverError('DROVER_NOTHING_TO_MOVE', `Application "${body.application}" already runs on node ${body.to}.`, { detail: { application: body.application, node_uuid: body.to } });
    }
    return withTag(reply, snap.tag).code(201).send(answer.migration);
  });

  router.handle('migration', async ({ params }) => findMigration(control.desired, params.id));
}

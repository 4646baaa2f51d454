/** drover's application endpoints: status (with the scheduler's reasons) and move. */
import type { MoveApplicationAnswer, MoveApplicationBody } from '#common/api.ts';
import { parseDuration } from '#common/units.ts';
import { indexOf } from '../desired/desired-index.ts';
import { DEFAULT_DATA_LOSS_THRESHOLD_SECONDS, forceMove } from '../desired/force-move.ts';
import { DroverError } from '#common/errors.ts';
import { Control } from '../control.ts';
import { scaleApplication } from '../desired/instances.ts';
import { requestedTag } from '../http/conditional.ts';
import { applicationStatus, applicationStatuses } from '../cluster/state-answers.ts';
import { findApplication, findMigration } from '../desired/lookups.ts';
import { moveApplication } from '../desired/applications.ts';
import { withTag } from '../http/conditional.ts';
import type { Router } from '../http/router.ts';

export function applicationRoutes(router: Router, control: Control): void {
  const statuses = () => applicationStatuses(control.desired, control.observed, control.unschedulable, control.replication());

  router.handle('applications', async () => statuses());

  router.handle('application', async ({ params }) => applicationStatus(control.desired, findApplication(control.desired, params.name), control.observed, control.unschedulable, control.replication()));

  /** `drover move --force`: the source is silent, the target's replica is promoted (desired/force-move.ts). */
  const force = async (name: string, body: MoveApplicationBody) => {
    let answer: MoveApplicationAnswer | undefined;
    const acceptSeconds = body.accept_data_loss === undefined ? null : parseDuration(body.accept_data_loss);
    if (acceptSeconds === null && body.accept_data_loss !== undefined) {
      throw new DroverError('DROVER_INVALID_REQUEST', `accept_data_loss "${body.accept_data_loss}" is not a duration (e.g. 5m12s).`, { detail: { accept_data_loss: body.accept_data_loss } });
    }
    const snap = await control.change((d, ctx) => {
      const from = findApplication(d, name).node_uuid;
      const hostOf = (uuid: string) => control.observed.get(uuid)?.report.host ?? indexOf(d).nodes.get(uuid)?.host ?? uuid;
      const source = from === undefined ? { state: 'known' as const, host: '', silentMs: null } : ctx.start.nodeSilence!(from);
      const out = forceMove(d, {
        application: name,
        to: body.node_uuid,
        now: ctx.now,
        version: ctx.version,
        source,
        snapshotsOn: (node, id) => control.observed.get(node)?.report.datasets.find((x) => x.dataset_id === id)?.snapshots,
        hostOf,
        thresholdSeconds: body.data_loss_threshold_seconds ?? DEFAULT_DATA_LOSS_THRESHOLD_SECONDS,
        acceptSeconds,
      });
      answer = { application: indexOf(out.desired).applications.get(name)!, migration: out.migration };
      return out.desired;
    });
    control.log.warn({ application: name, to: body.node_uuid, migration: answer!.migration!.id, dataLossSeconds: answer!.migration!.failover?.snapshot_age_seconds }, 'forced move: replica promoted');
    return { snap, answer: answer! };
  };

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
    const source = findApplication(control.desired, params.name).node_uuid;
    const silent = source !== undefined && source !== body.node_uuid && control.observed.stateOf(source) !== 'known';
    const { snap, answer } = body.force === true && silent ? await force(params.name, body) : await move(params.name, body.node_uuid);
    return withTag(reply, snap.tag).code(answer.migration ? 202 : 200).send(answer);
  });

  /** `drover scale` (docs/DESIGN.md §30): the number of instances, and nothing else. */
  router.handle('scaleApplication', async ({ params, body, request, reply }) => {
    const snap = await control.change((d, ctx) => {
      Control.requireTag(ctx, requestedTag(request));
      return scaleApplication(d, params.name, body.instances);
    });
    control.log.info({ application: params.name, instances: body.instances }, 'application scaled');
    const status = applicationStatus(control.desired, findApplication(control.desired, params.name), control.observed, control.unschedulable, control.replication());
    return withTag(reply, snap.tag).code(200).send(status);
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

  router.handle('cancelMigration', async ({ params }) => control.failMigration(params.id, 'give-up', 'cancelled by the operator'));
}

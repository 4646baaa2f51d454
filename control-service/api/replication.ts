/**
 * Continuous replication (docs/DESIGN.md §17): a dataset's or an application's policy, and
 * the replicas' state. A policy change is a store write like any other: the scheduler
 * chooses the replicas in the same write, and nothing else changes (no restart, no move).
 */
import type { Application, Dataset } from '#common/model.ts';
import { Control } from '../control.ts';
import { indexOf } from '../desired/desired-index.ts';
import { setApplicationReplication, setDatasetReplication } from '../desired/replication.ts';
import { requestedTag, withTag } from '../http/conditional.ts';
import type { Router } from '../http/router.ts';

export function replicationRoutes(router: Router, control: Control): void {
  router.handle('setDatasetReplication', async ({ params, body, request, reply }) => {
    const snap = await control.change((d, ctx) => {
      Control.requireTag(ctx, requestedTag(request));
      return setDatasetReplication(d, params.dataset_id, body);
    });
    const dataset: Dataset | undefined = indexOf(snap.desired).datasets.get(params.dataset_id);
    return withTag(reply, snap.tag).code(200).send(dataset);
  });

  router.handle('setApplicationReplication', async ({ params, body, request, reply }) => {
    const snap = await control.change((d, ctx) => {
      Control.requireTag(ctx, requestedTag(request));
      return setApplicationReplication(d, params.name, body);
    });
    const app: Application | undefined = indexOf(snap.desired).applications.get(params.name);
    return withTag(reply, snap.tag).code(200).send(app);
  });

  router.handle('replication', async () => control.replication());
}

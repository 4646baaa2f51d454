/**
 * `POST /v1/drover/deploy`: a Compose (or Flocker) file plus a topology file, merged into
 * the desired configuration as one project (common/deploy does the parsing and the plan).
 * With `dry_run` nothing is stored and the answer says what would change.
 */
import type { DeployAnswer } from '#common/api.ts';
import { parseDeployment, planDeploy, type DeployDiff } from '../deploy/index.ts';
import type { Migration } from '#common/model.ts';
import type { Control, Change } from '../control.ts';
import { movesToMigrations } from '../desired/deploy-moves.ts';
import { withTag } from '../http/conditional.ts';
import type { Router } from '../http/router.ts';

/** Compose and topology texts may be large; the rest of the API keeps the default limit. */
export const DEPLOY_BODY_LIMIT = 16 * 1024 * 1024;

export function deployRoutes(router: Router, control: Control): void {
  router.handle('deploy', async ({ body, reply }) => {
    const parsed = parseDeployment({ project: body.project, compose: body.compose, topology: body.topology, nodes: [...control.desired.nodes] });
    let diff: DeployDiff = { added: [], changed: [], removed: [], unchanged: [] };
    let migrations: Migration[] = [];
    const fn: Change = (d, ctx) => {
      const planned = planDeploy(d, parsed, body.project);
      diff = planned.diff;
      const out = movesToMigrations(d, planned.desired, ctx.start);
      migrations = out.migrations;
      return out.desired;
    };
    if (body.dry_run) {
      const preview = control.preview(fn);
      const answer: DeployAnswer = { project: body.project, dry_run: true, diff, migrations, unschedulable: Object.fromEntries(preview.unschedulable), tag: control.snapshot.tag };
      return withTag(reply, control.snapshot.tag).send(answer);
    }
    const snap = await control.change(fn);
    control.log.info({ project: body.project, added: diff.added.length, changed: diff.changed.length, removed: diff.removed.length, moves: migrations.length }, 'deploy applied');
    const mine = new Set(snap.desired.applications.filter((a) => a.project === body.project).map((a) => a.name));
    const unschedulable = Object.fromEntries([...control.unschedulable].filter(([name]) => mine.has(name)));
    const answer: DeployAnswer = { project: body.project, dry_run: false, diff, migrations, unschedulable, tag: snap.tag };
    return withTag(reply, snap.tag).send(answer);
  }, { bodyLimit: DEPLOY_BODY_LIMIT });
}

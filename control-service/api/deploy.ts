/**
 * `POST /v1/drover/deploy`: a Compose (or Flocker) file plus a topology file, merged into
 * the desired configuration as one project (common/deploy does the parsing and the plan).
 * With `dry_run` nothing is stored and the answer says what would change.
 */
import { checkDroverPorts, droverPorts } from '../deploy/drover-ports.ts';
import type { DeployAnswer } from '#common/api.ts';
import { parseDeployment, planDeploy, type DeployDiff } from '../deploy/index.ts';
import type { Migration } from '#common/model.ts';
import type { Control, Change } from '../control.ts';
import { movesToMigrations } from '../desired/deploy-moves.ts';
import { withTag } from '../http/conditional.ts';
import type { Router } from '../http/router.ts';
import { contentIdOf } from '../files/sealing.ts';
import { DroverError } from '#common/errors.ts';

/** A shipped file's largest size (cli/compose-files.ts says the same to the operator). */
export const MAX_FILE_BYTES = 1024 * 1024;

/** The body's `files` (SHA-256 → base64) → contents, each checked against its name and size. */
function decodeUploads(files: Record<string, string> | undefined): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const problems: string[] = [];
  for (const [sha, text] of Object.entries(files ?? {})) {
    const bytes = Buffer.from(text, 'base64');
    if (bytes.length > MAX_FILE_BYTES) problems.push(`files.${sha.slice(0, 12)}…: ${bytes.length} bytes; a shipped file is at most ${MAX_FILE_BYTES}`);
    else if (contentIdOf(bytes) !== sha) problems.push(`files.${sha.slice(0, 12)}…: the content's SHA-256 is not its name`);
    else out.set(sha, bytes);
  }
  if (problems.length > 0) throw new DroverError('DROVER_INVALID_REQUEST', problems.join('; '), { detail: { issues: problems } });
  return out;
}

/** Compose and topology texts may be large; the rest of the API keeps the default limit. */
export const DEPLOY_BODY_LIMIT = 16 * 1024 * 1024;

export function deployRoutes(router: Router, control: Control): void {
  router.handle('deploy', async ({ body, reply }) => {
    const uploads = decodeUploads(body.files);
    const parsed = parseDeployment({
      project: body.project,
      compose: body.compose,
      topology: body.topology,
      nodes: [...control.desired.nodes],
      files: { uploads, secretIdOf: (bytes) => control.vault.idOf('secret', bytes) },
    });
    // A port drover's own processes listen on cannot be published: the proxy or drover's process would not bind.
    checkDroverPorts(parsed.applications, droverPorts([...control.observed.all()].map((r) => r.report)));
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
    // The contents first: an application in the configuration never names one not stored.
    for (const content of parsed.contents?.values() ?? []) await control.vault.put(content.kind, content.bytes);
    const snap = await control.change(fn);
    control.log.info({ project: body.project, added: diff.added.length, changed: diff.changed.length, removed: diff.removed.length, moves: migrations.length }, 'deploy applied');
    const mine = new Set(snap.desired.applications.filter((a) => a.project === body.project).map((a) => a.name));
    const unschedulable = Object.fromEntries([...control.unschedulable].filter(([name]) => mine.has(name)));
    const answer: DeployAnswer = { project: body.project, dry_run: false, diff, migrations, unschedulable, tag: snap.tag };
    return withTag(reply, snap.tag).send(answer);
  }, { bodyLimit: DEPLOY_BODY_LIMIT });

  // The API's way to a secret id (docs/DESIGN.md §22): the value is sealed at once and never read back.
  router.handle('createSecret', async ({ body, reply }) => {
    const bytes = Buffer.from(body.content_base64, 'base64');
    if (bytes.length > MAX_FILE_BYTES) throw new DroverError('DROVER_INVALID_REQUEST', `a secret is at most ${MAX_FILE_BYTES} bytes`);
    return reply.code(201).send({ id: await control.vault.put('secret', bytes) });
  }, { bodyLimit: 2 * 1024 * 1024 });
}

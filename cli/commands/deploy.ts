import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { DroverError } from '#common/errors.ts';
import { projectNameOf } from '#common/project-name.ts';
import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { prepareCompose } from '../compose-env.ts';
import { readProjectPath } from '../project-path.ts';
import { print, printJson } from '../context.ts';

const USAGE = 'drover deploy <topology> <compose> [--project NAME] [--env-file FILE] [--profile NAME]... [--dry-run] [--json]';

/**
 * `drover deploy`: reads the two files and sends them to the control service, which parses
 * them (`parseDeployment`), merges the project (`planDeploy`) and answers with the diff. The
 * files travel as text with the names typed here, so errors point at the operator's paths.
 */
export const deployCommand: Command = {
  name: 'deploy',
  summary: 'apply a topology and a Compose (or Flocker) file as one project',
  usage: USAGE,
  needs: 'a topology file and a Compose file',
  configure: (command) =>
    command
      .argument('<topology>', 'the topology file: nodes and where applications may run')
      .argument('<compose>', 'the Compose (or Flocker) file')
      .option('--project <name>', "the project (default: COMPOSE_PROJECT_NAME, the Compose file's name:, else its directory name)")
      .option('--env-file <file>', "where Compose variables come from besides the shell (default: .env beside the Compose file)")
      .option('--profile <name>', 'enable a Compose profile (repeatable; also COMPOSE_PROFILES)', (value: string, all: string[]) => [...all, value], [] as string[])
      .option('--dry-run', 'show what would change, change nothing'),
  async run(ctx, values, positionals) {
    if (positionals.length !== 2) {
      throw usageError(positionals.length < 2 ? 'deploy needs a topology file and a Compose file' : `deploy takes two files, got ${positionals.length}`, USAGE);
    }
    const [topologyPath, composePath] = positionals as [string, string];
    const topology = await readInput(ctx.cwd, topologyPath, 'topology');
    const raw = await readInput(ctx.cwd, composePath, 'Compose');
    // Compose's variables, .env, env_file: and profiles are resolved here, on the operator's
    // machine, before the file leaves it (cli/compose-env.ts).
    const composeDir = dirname(resolve(ctx.cwd, composePath));
    const prepared = await prepareCompose({
      text: raw,
      file: composePath,
      env: ctx.env,
      ...(typeof values.envFile === 'string' ? { envFile: resolve(ctx.cwd, values.envFile) } : {}),
      profiles: (values.profile as string[] | undefined) ?? [],
      readText: (path) => readFile(resolve(composeDir, path), 'utf8').catch(() => null),
      readPath: (path) => readProjectPath(resolve(composeDir, path)),
    });
    for (const w of prepared.warnings) print(ctx.stderr, `warning: ${w}`);
    if (prepared.errors.length > 0) throw new DroverError('DROVER_BAD_CONFIG', prepared.errors.join('\n'), { detail: { file: composePath } });
    const compose = prepared.text;
    const project = (values.project as string | undefined) ?? prepared.projectFromEnv ?? projectNameOf(compose) ?? defaultProject(resolve(ctx.cwd, composePath));
    const dryRun = values.dryRun === true;
    const answer = await ctx.control.deploy({
      project,
      compose: { file: composePath, text: compose },
      topology: { file: topologyPath, text: topology },
      dry_run: dryRun,
      files: Object.fromEntries([...prepared.uploads].map(([sha, bytes]) => [sha, Buffer.from(bytes).toString('base64')])),
    });
    if (ctx.json) {
      printJson(ctx.stdout, { ...answer, project, dry_run: dryRun });
      return 0;
    }
    const { added, changed, removed, unchanged } = answer.diff;
    print(ctx.stdout, `project "${project}"${dryRun ? ' (dry run: nothing was changed)' : ''}`);
    for (const line of added) print(ctx.stdout, `  + ${line}`);
    for (const line of changed) print(ctx.stdout, `  ~ ${line}`);
    for (const line of removed) print(ctx.stdout, `  - ${line}`);
    for (const line of unchanged) print(ctx.stdout, `  = ${line}`);
    const summary = `${added.length} added, ${changed.length} changed, ${removed.length} removed, ${unchanged.length} unchanged`;
    print(ctx.stdout, dryRun ? `would apply: ${summary}` : summary);
    for (const m of answer.migrations ?? []) {
      print(ctx.stdout, `moving "${m.application ?? m.dataset_ids.join(', ')}" to node ${m.to} (migration ${m.id}; drover status shows it)`);
    }
    for (const [app, reason] of Object.entries(answer.unschedulable ?? {})) print(ctx.stdout, `cannot place "${app}" yet: ${reason}`);
    return 0;
  },
};

async function readInput(cwd: string, path: string, what: string): Promise<string> {
  try {
    return await readFile(resolve(cwd, path), 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : String(code ?? err);
    throw usageError(`cannot read the ${what} file "${path}": ${why}`, USAGE);
  }
}

/** Compose's rule: the Compose file's directory name, lower-cased, other characters dropped. */
export function defaultProject(composeFile: string): string {
  const name = basename(dirname(composeFile))
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '')
    .replace(/^[^a-z0-9]+/, '');
  return name === '' ? 'default' : name;
}

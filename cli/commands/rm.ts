import { DroverError, toDroverError } from '#common/errors.ts';
import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print, printJson } from '../context.ts';

const USAGE = 'drover rm <project> [--volumes] [--dry-run] [--json]';

/**
 * `drover rm <project>`: removes the project's applications from the desired configuration
 * (their nodes stop and remove the containers), as `docker compose down` does. Its datasets
 * stay — the data is kept, and a later deploy of the project finds it again — unless
 * `--volumes` is given: then the project's datasets (those its deploy made, metadata
 * `project`) are deleted too, except any an application of another project still mounts
 * (kept, and said). `--dry-run` says what would go and changes nothing. Each removal is its
 * own API call: one that is refused (a move in flight) is named, the others still happen,
 * and the exit code is 1.
 */
export const rmCommand: Command = {
  name: 'rm',
  summary: "remove a project's applications (its datasets too with --volumes)",
  usage: USAGE,
  needs: 'a project',
  configure: (command) =>
    command
      .argument('<project>', 'the project: the name deploy gave it (--project, the Compose name:, or its directory)')
      .option('--volumes', "also delete the project's datasets, with their data on every node")
      .option('--dry-run', 'say what would be removed; change nothing'),
  async run(ctx, values, positionals) {
    if (positionals.length !== 1) throw usageError(positionals.length === 0 ? 'rm needs a project' : `rm takes one project, got ${positionals.length}: ${positionals.join(' ')}`, USAGE);
    const project = positionals[0]!;
    const volumes = values.volumes === true;
    const dryRun = values.dryRun === true;
    const [{ containers }, { datasets }] = await Promise.all([ctx.control.containers(), ctx.control.datasets()]);
    const apps = containers.filter((a) => a.project === project);
    const live = datasets.filter((d) => !d.deleted && d.metadata.project === project);
    if (apps.length === 0 && (!volumes || live.length === 0)) {
      const projects = [...new Set(containers.map((a) => a.project).filter((p): p is string => p !== undefined))].sort();
      throw new DroverError('DROVER_PROJECT_NOT_FOUND', `no project "${project}"${volumes ? ' (no application and no dataset of it)' : ''}; projects: ${projects.join(', ') || 'none'}`, { detail: { project } });
    }
    const usedElsewhere = (id: string) => containers.find((a) => a.project !== project && a.volumes.some((v) => v.dataset_id === id));
    const doomed = volumes ? live.filter((d) => usedElsewhere(d.dataset_id) === undefined) : [];
    const kept = volumes ? live.filter((d) => usedElsewhere(d.dataset_id) !== undefined) : [];
    const failed: { what: string; why: string }[] = [];
    const removed: string[] = [];
    const deleted: string[] = [];
    if (!dryRun) {
      for (const app of apps) {
        try {
          await ctx.control.deleteContainer(app.name);
          removed.push(app.name);
        } catch (err) {
          failed.push({ what: `application ${app.name}`, why: toDroverError(err).message });
        }
      }
      for (const d of doomed) {
        try {
          await ctx.control.deleteDataset(d.dataset_id);
          deleted.push(d.dataset_id);
        } catch (err) {
          failed.push({ what: `dataset ${d.metadata.name ?? d.dataset_id}`, why: toDroverError(err).message });
        }
      }
    }
    const nameOf = (id: string) => live.find((d) => d.dataset_id === id)?.metadata.name ?? id;
    if (ctx.json) {
      printJson(ctx.stdout, {
        project,
        dry_run: dryRun,
        applications: dryRun ? apps.map((a) => a.name) : removed,
        datasets: dryRun ? doomed.map((d) => d.dataset_id) : deleted,
        datasets_kept: (volumes ? kept : live).map((d) => d.dataset_id),
        failed,
      });
    } else {
      const verb = dryRun ? 'would remove' : 'removed';
      for (const name of dryRun ? apps.map((a) => a.name) : removed) print(ctx.stdout, `${verb} application ${name}`);
      for (const id of dryRun ? doomed.map((d) => d.dataset_id) : deleted) print(ctx.stdout, `${dryRun ? 'would delete' : 'deleted'} dataset ${nameOf(id)} (${id}) and its data`);
      for (const d of kept) print(ctx.stdout, `kept dataset ${nameOf(d.dataset_id)}: application ${usedElsewhere(d.dataset_id)!.name} of another project mounts it`);
      if (!volumes && live.length > 0) print(ctx.stdout, `kept ${live.length} dataset(s) of ${project} with their data (${live.map((d) => nameOf(d.dataset_id)).join(', ')}); drover rm ${project} --volumes deletes them`);
    }
    if (failed.length > 0) {
      throw new DroverError('DROVER_PROJECT_REMOVE_FAILED', `not all of project "${project}" was removed: ${failed.map((f) => `${f.what}: ${f.why}`).join('; ')}`, { detail: { project, failed } });
    }
    return 0;
  },
};

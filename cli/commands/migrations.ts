import { DroverError } from '#common/errors.ts';
import type { Migration } from '#common/model.ts';
import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print, printJson, type CliContext } from '../context.ts';
import { bytes, duration, table } from '../format.ts';
import { phaseSpans, timelineLine } from '../progress-view.ts';

const USAGE = ['drover migrations list [-o wide] [--json]', '       drover migrations cancel <migration (id or a unique prefix)> [--json]'].join('\n');

/**
 * `drover migrations …`: the moves running and recent, and cancelling one that has not
 * handed off (it fails with "cancelled by the operator"; the application stays on, or returns
 * to, its source). After handoff the target owns the application and cancel is refused with
 * that reason.
 */
export const migrationsCommand: Command = {
  name: 'migrations',
  summary: 'list migrations, or cancel one that has not handed off',
  usage: USAGE,
  subcommands: [
    {
      name: 'list',
      summary: 'migrations running and recent, with phase, progress and error',
      usage: 'drover migrations list [--json]',
      async run(ctx, _values, args) {
        if (args.length !== 0) throw usageError('migrations list needs no arguments', USAGE);
        return list(ctx);
      },
    },
    {
      name: 'cancel',
      summary: 'cancel a migration that has not handed off',
      usage: 'drover migrations cancel <migration> [--json]',
      needs: 'a migration',
      configure: (command) => command.argument('<migration>', 'a migration: its id or a unique prefix'),
      async run(ctx, _values, args) {
        if (args.length !== 1) throw usageError('migrations cancel needs a migration', USAGE);
        const migration = resolveMigration(await ctx.control.migrations(), args[0]!);
        const cancelled = await ctx.control.cancelMigration(migration.id);
        if (ctx.json) printJson(ctx.stdout, cancelled);
        else print(ctx.stdout, `migration ${cancelled.id} cancelled (was ${migration.phase}): "${cancelled.application ?? 'its datasets'}" stays on its source`);
        return 0;
      },
    },
  ],
};

async function list(ctx: CliContext): Promise<number> {
  const [migrations, nodes] = await Promise.all([ctx.control.migrations(), ctx.control.nodes()]);
  if (ctx.json) {
    printJson(ctx.stdout, migrations);
    return 0;
  }
  const host = (uuid: string) => nodes.find((n) => n.uuid === uuid)?.host ?? uuid;
  const sorted = [...migrations].sort((a, b) => a.started_at - b.started_at);
  const rows = sorted.map((m) => [m.id, m.application ?? `${m.dataset_ids.length} dataset(s)`, host(m.from), host(m.to), m.phase, `${m.round} / ${bytes(m.bytes_sent)}`, duration(m.cutover_ms), m.error]);
  const header = ['ID', 'APPLICATION', 'FROM', 'TO', 'PHASE', 'ROUND / SENT', 'CUTOVER', 'ERROR'];
  // -o wide: each migration's phase timeline (docs/DESIGN.md §27), where its record keeps one.
  if (ctx.wide) print(ctx.stdout, table([...header, 'TIMELINE'], rows.map((row, i) => [...row, sorted[i]!.phases === undefined ? null : timelineLine(phaseSpans(sorted[i]!, []))])));
  else print(ctx.stdout, table(header, rows));
  return 0;
}

/** A migration by its id or a unique prefix of it. */
function resolveMigration(migrations: readonly Migration[], ref: string): Migration {
  const found = migrations.filter((m) => m.id.startsWith(ref.toLowerCase()));
  if (found.length === 1) return found[0]!;
  throw new DroverError(found.length === 0 ? 'DROVER_MIGRATION_NOT_FOUND' : 'DROVER_INVALID_REQUEST', found.length === 0 ? `No migration "${ref}".` : `"${ref}" names ${found.length} migrations; give more of the id.`, {
    detail: { migration: ref },
  });
}

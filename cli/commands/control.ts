import { readFile, rename, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DroverError } from '#common/errors.ts';
import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print, printJson } from '../context.ts';

const USAGE = ['drover control backup [FILE] [--json]', '       drover control restore <file> [--force] [--json]'].join('\n');

/**
 * `drover control backup|restore` (docs/DESIGN.md §29): the desired configuration out to a
 * file and back, through the API with the caller's user certificate, whatever store the
 * control service runs on. A backup names the cluster (its CA's fingerprint); restore
 * refuses another cluster's file unless `--force`, and is refused whole — naming each bad
 * field — when anything in the file does not validate. The file holds the applications'
 * environment: it is written 0600.
 */
export const controlCommand: Command = {
  name: 'control',
  summary: 'back up or restore the desired configuration',
  usage: USAGE,
  subcommands: [
    {
      name: 'backup',
      summary: 'write the desired configuration to a file (or stdout)',
      usage: 'drover control backup [FILE] [--json]',
      // A file argument, not -o: -o is every command's output format (wide, json).
      configure: (command) => command.argument('[file]', 'where to write it (default: stdout)'),
      async run(ctx, _values, args) {
        if (args.length > 1) throw usageError(`control backup takes one file at most (got ${args.length})`, USAGE);
        const backup = await ctx.control.backup();
        const text = `${JSON.stringify(backup, null, 2)}\n`;
        const output = args[0];
        if (output === undefined) {
          ctx.stdout.write(text);
          return 0;
        }
        const path = resolve(ctx.cwd, output);
        const temp = `${path}.tmp-${process.pid}`;
        try {
          await writeFile(temp, text, { mode: 0o600 });
          await rename(temp, path);
        } catch (err) {
          throw new DroverError('DROVER_CONFIG_INVALID', `${output}: cannot be written: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
        }
        const d = backup.desired;
        if (ctx.json) printJson(ctx.stdout, { file: path, version: backup.version, tag: backup.tag, cluster: backup.cluster });
        else print(ctx.stdout, `backup of version ${backup.version} written to ${path}: ${d.applications.length} application(s), ${d.datasets.length} dataset(s), ${d.nodes.length} node(s), ${d.leases.length} lease(s)`);
        return 0;
      },
    },
    {
      name: 'restore',
      summary: "replace the desired configuration with a backup's",
      usage: 'drover control restore <file> [--force] [--json]',
      needs: 'a backup file',
      configure: (command) => command.argument('<file>', 'a file written by drover control backup').option('--force', "restore a backup of another cluster (its CA differs) all the same"),
      async run(ctx, values, args) {
        if (args.length !== 1) throw usageError('control restore needs one backup file', USAGE);
        const file = args[0]!;
        let text: string;
        try {
          text = await readFile(resolve(ctx.cwd, file), 'utf8');
        } catch (err) {
          throw usageError(`${file}: cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, USAGE);
        }
        let backup: unknown;
        try {
          backup = JSON.parse(text);
        } catch (err) {
          throw usageError(`${file}: not JSON (${(err as Error).message}): a file written by drover control backup is`, USAGE);
        }
        // The control service validates it whole, with every path named (backup.desired.…).
        const answer = await ctx.control.restore({ backup: backup as never, force: values.force === true });
        if (ctx.json) printJson(ctx.stdout, answer);
        else {
          const r = answer.restored;
          print(ctx.stdout, `restored from ${file}${answer.forced ? ' (forced: another cluster)' : ''}: version ${answer.version}, ${r.applications} application(s), ${r.datasets} dataset(s), ${r.nodes} node(s), ${r.leases} lease(s)`);
          if (answer.dropped_migrations.length > 0) print(ctx.stdout, `  ${answer.dropped_migrations.length} move(s) unfinished in the backup left out: their applications stay where the backup has them`);
        }
        return 0;
      },
    },
  ],
};

import { DroverError } from '#common/errors.ts';
import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print, printJson } from '../context.ts';
import { bytes, duration } from '../format.ts';
import { watchMigration } from '../migration-progress.ts';
import { resolveNode } from '../resolve.ts';

const USAGE = 'drover move <application> <node (uuid, address or name)> [--no-wait] [--timeout SECONDS] [--json]';

/**
 * `drover move`: starts a migration (the application with its data) and, unless
 * `--no-wait`, shows its progress — phase, round, bytes, rate — until it is done (exit 0)
 * or failed (exit 1, with the reason; the source is still primary). A move whose source or
 * target is silent is refused at once by the control service (DROVER_NODE_SILENT).
 */
export const moveCommand = {
  name: 'move',
  summary: 'move an application with its data to another node',
  usage: USAGE,
  needs: 'an application and a node',
  configure: (command) =>
    command
      .argument('<application>', 'the application to move')
      .argument('<node>', 'where to: its uuid (or a unique prefix), address, or name label')
      .option('--no-wait', 'start the migration and return at once')
      .option('--timeout <seconds>', 'how long to show progress before returning (the move carries on)', '3600'),
  async run(ctx, values, positionals) {
    if (positionals.length !== 2) throw usageError('move needs an application and a node', USAGE);
    const [app, nodeRef] = positionals as [string, string];
    const timeoutText = (values.timeout as string | undefined) ?? '3600';
    if (!/^\d+$/.test(timeoutText) || Number(timeoutText) < 1) throw usageError(`--timeout "${timeoutText}" is not a number of seconds`, USAGE);
    const node = resolveNode(await ctx.control.nodes(), nodeRef);
    // `migration` is null when the application already runs there.
    const { migration: started } = await ctx.control.moveApplication(app, node.uuid);
    if (started === null) {
      if (ctx.json) printJson(ctx.stdout, null);
      else print(ctx.stdout, `"${app}" is already on ${node.host}; nothing to move`);
      return 0;
    }
    if (values.wait === false) {
      if (ctx.json) printJson(ctx.stdout, started);
      else print(ctx.stdout, `migration ${started.id} started: moving "${app}" to ${node.host} (${node.uuid})`);
      return 0;
    }
    if (!ctx.json) print(ctx.stdout, `moving "${app}" to ${node.host} (migration ${started.id}; before handoff, drover migrations cancel ${started.id.slice(0, 8)} stops it)`);
    const end = await watchMigration(ctx, started, Number(timeoutText) * 1000);
    if (ctx.json) printJson(ctx.stdout, end);
    if (end.phase === 'failed') {
      throw new DroverError('DROVER_MIGRATION_FAILED', `migration ${end.id} failed: ${end.error ?? 'no reason given'}; "${app}" stays where it was`, {
        detail: { migration: end.id },
      });
    }
    if (!ctx.json) {
      print(ctx.stdout, `moved "${app}" to ${node.host}: ${end.round} round(s), ${bytes(end.bytes_sent)} sent, cutover ${duration(end.cutover_ms)}`);
    }
    return 0;
  },
} satisfies Command;

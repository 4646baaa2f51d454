import { DroverError } from '#common/errors.ts';
import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print, printJson } from '../context.ts';
import { bytes, duration } from '../format.ts';
import { watchMigration } from '../migration-progress.ts';
import { phaseSpans, timelineLine } from '../progress-view.ts';
import { resolveNode } from '../resolve.ts';

const USAGE = 'drover move <application> <node (uuid, address or name)> [--no-wait] [--timeout SECONDS] [--force [--accept-data-loss WINDOW] [--loss-threshold SECONDS]] [--json]';

/**
 * `drover move`: starts a migration (the application with its data) and, unless
 * `--no-wait`, shows its progress — phase, round, bytes, rate — until it is done (exit 0)
 * or failed (exit 1, with the reason; the source is still primary). A move whose source or
 * target is silent is refused at once by the control service (DROVER_NODE_SILENT).
 *
 * `--force` (docs/DESIGN.md §19): when the application's node is silent, the target's replica
 * is promoted instead — refused, with the reason, when there is no replica or the target
 * holds no copy; when its newest snapshot is older than the threshold (60 s, or
 * `--loss-threshold`) the operator must also repeat the data window lost:
 * `--accept-data-loss 5m12s`. While the source reports, `--force` changes nothing: the move
 * is the usual live one.
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
      .option('--timeout <seconds>', 'how long to show progress before returning (the move carries on)', '3600')
      .option('--force', "when the application's node is silent: promote the target's replica instead (its newest snapshot)")
      .option('--accept-data-loss <window>', 'with --force: the data window you accept losing, as the refusal names it (e.g. 5m12s)')
      .option('--loss-threshold <seconds>', 'with --force: a copy older than this needs --accept-data-loss (default 60)'),
  async run(ctx, values, positionals) {
    if (positionals.length !== 2) throw usageError('move needs an application and a node', USAGE);
    const [app, nodeRef] = positionals as [string, string];
    const timeoutText = (values.timeout as string | undefined) ?? '3600';
    if (!/^\d+$/.test(timeoutText) || Number(timeoutText) < 1) throw usageError(`--timeout "${timeoutText}" is not a number of seconds`, USAGE);
    const force = values.force === true;
    const accept = values.acceptDataLoss as string | undefined;
    const thresholdText = values.lossThreshold as string | undefined;
    if (!force && (accept !== undefined || thresholdText !== undefined)) throw usageError('--accept-data-loss and --loss-threshold go with --force', USAGE);
    if (thresholdText !== undefined && !/^\d+$/.test(thresholdText)) throw usageError(`--loss-threshold "${thresholdText}" is not a number of seconds`, USAGE);
    const node = resolveNode(await ctx.control.nodes(), nodeRef);
    const options = force ? { force: true, ...(accept === undefined ? {} : { accept_data_loss: accept }), ...(thresholdText === undefined ? {} : { data_loss_threshold_seconds: Number(thresholdText) }) } : {};
    // `migration` is null when the application already runs there.
    const { migration: started } = await ctx.control.moveApplication(app, node.uuid, options);
    if (started?.failover !== undefined) {
      const lost = started.failover.snapshot_age_seconds;
      if (ctx.json) printJson(ctx.stdout, started);
      else print(ctx.stdout, `forced: "${app}" now runs on ${node.host} from its replica (${started.failover.snapshots.map((s) => s.snapshot).join(', ') || 'no data'}); writes of the last ${lost === null ? '?' : duration(lost * 1000)} on the silent node are not in it (migration ${started.id})`);
      return 0;
    }
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
      if (end.phases !== undefined) print(ctx.stdout, timelineLine(phaseSpans(end, [])));
    }
    return 0;
  },
} satisfies Command;

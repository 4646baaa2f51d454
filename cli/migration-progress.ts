import { DroverError, isDroverError } from '#common/errors.ts';
import { isTerminal } from '#common/migration-protocol.ts';
import type { Migration, MigrationPhase } from '#common/model.ts';
import { print, type CliContext } from './context.ts';
import { duration } from './format.ts';
import { addSample, observedRate, phaseDoneLine, phaseSpans, progressLine, roundFigures, type Sample } from './progress-view.ts';

export const POLL_MS = 500;
/** Consecutive failed polls tolerated (a control service restarting) before giving up. */
const MAX_POLL_FAILURES = 10;

/**
 * Polls `GET /v1/drover/migrations/<id>` until the migration is `done` or `failed`, or
 * `timeoutMs` passes (docs/DESIGN.md §27). A terminal gets a line per finished phase (the
 * timeline) and, below it, the current one redrawn in place: the round's bar, its bytes
 * against its own size, rate and ETA. Anything else gets only the line per finished phase.
 * With `--json` nothing is printed here; the caller prints the final migration.
 */
export async function watchMigration(ctx: CliContext, first: Migration, timeoutMs: number): Promise<Migration> {
  const tty = ctx.stdout.isTTY === true && !ctx.json;
  const now = ctx.now ?? Date.now;
  let current = first;
  let failures = 0;
  let samples: Sample[] = [];
  const seen: { phase: MigrationPhase; at: number }[] = [{ phase: first.phase, at: now() }];
  let printed = 0;
  let preCopyBytes: number | null = null;
  let drawn = false;
  const clearLine = () => {
    if (drawn) ctx.stdout.write('\r\x1b[2K');
    drawn = false;
  };
  const maxPolls = Math.max(1, Math.ceil(timeoutMs / POLL_MS));
  for (let poll = 0; ; poll++) {
    if (seen.at(-1)!.phase !== current.phase) seen.push({ phase: current.phase, at: now() });
    if (current.phase === 'pre-copy') {
      preCopyBytes = current.bytes_sent;
      const f = roundFigures(current);
      samples = addSample(samples, { at: now(), round: f.round, sent: f.sent });
    }
    if (!ctx.json) {
      const spans = phaseSpans(current, seen);
      const ended = spans.filter((s) => s.end !== null || isTerminal(s.phase));
      for (; printed < ended.length; printed++) {
        const span = ended[printed]!;
        if (span.phase === 'done') continue;
        clearLine();
        print(ctx.stdout, phaseDoneLine(span, current, span.phase === 'pre-copy' ? preCopyBytes : null));
      }
      const open = spans.at(-1);
      if (tty && !isTerminal(current.phase) && open !== undefined) {
        clearLine();
        // The record's times are the control service's clock: fine for "how long so far" on hosts that keep time.
        const elapsed = Math.max(0, now() - open.start);
        ctx.stdout.write(progressLine(current, observedRate(samples, current.rate_bytes_per_second), elapsed, ctx.stdout.columns ?? 80));
        drawn = true;
      }
    }
    if (isTerminal(current.phase)) break;
    if (poll >= maxPolls) {
      clearLine();
      throw new DroverError('DROVER_TIMEOUT', `migration ${current.id} is still in phase ${current.phase} after ${duration(timeoutMs)}; it carries on without this command (drover status shows it)`, {
        detail: { migration: current.id },
      });
    }
    await ctx.sleep(POLL_MS);
    try {
      current = await ctx.control.migration(current.id);
      failures = 0;
    } catch (err) {
      if (!isDroverError(err, 'DROVER_CONTROL_UNREACHABLE') || ++failures > MAX_POLL_FAILURES) {
        clearLine();
        throw err;
      }
    }
  }
  clearLine();
  return current;
}

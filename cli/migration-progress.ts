import { DroverError, isDroverError } from '#common/errors.ts';
import { isTerminal } from '#common/migration-protocol.ts';
import type { Migration } from '#common/model.ts';
import { print, type CliContext } from './context.ts';
import { bytes, duration, rate } from './format.ts';

export const POLL_MS = 500;
/** Consecutive failed polls tolerated (a control service restarting) before giving up. */
const MAX_POLL_FAILURES = 10;

/** One line of progress: `pre-copy  round 2  1.2 GiB / 4.0 GiB (30%)  85 MiB/s`. Pure. */
export function progressLine(m: Migration): string {
  const parts = [m.phase.padEnd(8), `round ${m.round}`];
  const total = m.bytes_total;
  parts.push(total === null || total === 0 ? `${bytes(m.bytes_sent)} sent` : `${bytes(m.bytes_sent)} / ${bytes(total)} (${Math.min(100, Math.floor((m.bytes_sent / total) * 100))}%)`);
  // The rate is the pre-copy rounds' own; from cutover on it would only repeat the last one.
  if (m.rate_bytes_per_second !== null && m.phase === 'pre-copy') parts.push(rate(m.rate_bytes_per_second));
  return parts.join('  ');
}

/**
 * Polls `GET /v1/drover/migrations/<id>` until the migration is `done` or `failed`, or
 * `timeoutMs` passes. A terminal gets one line redrawn in place; anything else gets a line
 * each time the phase or round changes (so logs stay short). With `--json` nothing is
 * printed here; the caller prints the final migration.
 */
export async function watchMigration(ctx: CliContext, first: Migration, timeoutMs: number): Promise<Migration> {
  const tty = ctx.stdout.isTTY === true && !ctx.json;
  let current = first;
  let lastKey = '';
  let failures = 0;
  const maxPolls = Math.max(1, Math.ceil(timeoutMs / POLL_MS));
  for (let poll = 0; ; poll++) {
    if (!ctx.json) {
      const line = progressLine(current);
      if (tty) ctx.stdout.write(`\r\x1b[2K${line}`);
      else if (`${current.phase}/${current.round}` !== lastKey) print(ctx.stdout, line);
      lastKey = `${current.phase}/${current.round}`;
    }
    if (isTerminal(current.phase)) break;
    if (poll >= maxPolls) {
      if (tty) ctx.stdout.write('\n');
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
        if (tty) ctx.stdout.write('\n');
        throw err;
      }
    }
  }
  if (tty) ctx.stdout.write('\n');
  return current;
}

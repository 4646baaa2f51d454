/**
 * What the fence watchdog process decides (docs/DESIGN.md §18 "The fence watchdog"), pure: the
 * agent arms it over its stdin with an absolute deadline on the host's monotonic clock
 * (`process.hrtime`, shared by every process of the host) and what a fence covers; `next` says,
 * at a look, whether to fence, to end, or to wait.
 *
 * - A deadline passed without a newer arm → fence, once per deadline (a resumed agent arms again).
 * - `disarm` (the agent stops on purpose) → end without fencing.
 * - The agent's end of the pipe closed without a disarm (it was killed, or crashed) → fence at
 *   the deadline as usual, then end; with nothing armed (or an empty scope), end at once.
 */
import { z } from 'zod';

/** One line on the watchdog's stdin. */
export const WatchdogMessage = z.union([
  z
    .object({
      arm: z
        .object({
          /** process.hrtime.bigint() at which to fence, as a decimal string. */
          deadline_ns: z.string().regex(/^\d{1,30}$/),
          apps: z.array(z.string().max(256)).max(10_000),
          dataset_ids: z.array(z.string().max(64)).max(10_000),
        })
        .strict(),
    })
    .strict(),
  z.object({ disarm: z.literal(true) }).strict(),
]);
export type WatchdogMessage = z.infer<typeof WatchdogMessage>;

export type WatchdogStep = { kind: 'fence'; apps: string[]; datasetIds: string[]; lateMs: number } | { kind: 'exit'; why: string } | { kind: 'wait' };

interface Armed {
  deadlineNs: bigint;
  apps: string[];
  datasetIds: string[];
}

export class WatchdogDeadline {
  private armed: Armed | null = null;
  private firedFor: bigint | null = null;
  private disarmed = false;
  private inputEnded = false;

  /** Takes one line from the agent; returns why it was refused, or null. */
  take(line: string): string | null {
    let parsed: WatchdogMessage;
    try {
      parsed = WatchdogMessage.parse(JSON.parse(line));
    } catch (err) {
      return err instanceof Error ? err.message.slice(0, 200) : 'not a message';
    }
    if ('disarm' in parsed) this.disarmed = true;
    else this.armed = { deadlineNs: BigInt(parsed.arm.deadline_ns), apps: parsed.arm.apps, datasetIds: parsed.arm.dataset_ids };
    return null;
  }

  /** The agent's end of the pipe closed. */
  end(): void {
    this.inputEnded = true;
  }

  next(nowNs: bigint): WatchdogStep {
    if (this.disarmed) return { kind: 'exit', why: 'disarmed by the agent' };
    const armed = this.armed;
    if (armed !== null && nowNs > armed.deadlineNs && this.firedFor !== armed.deadlineNs) {
      this.firedFor = armed.deadlineNs;
      return { kind: 'fence', apps: armed.apps, datasetIds: armed.datasetIds, lateMs: Number(nowNs - armed.deadlineNs) / 1e6 };
    }
    if (this.inputEnded) {
      if (armed === null) return { kind: 'exit', why: 'the agent ended before arming' };
      if (armed.apps.length === 0 && armed.datasetIds.length === 0) return { kind: 'exit', why: 'the agent is gone; nothing to fence' };
      if (this.firedFor === armed.deadlineNs) return { kind: 'exit', why: 'the agent is gone; fenced' };
    }
    return { kind: 'wait' };
  }
}

/** The line that arms a watchdog: fence at `deadlineNs` (process.hrtime.bigint()). */
export function armLine(deadlineNs: bigint, apps: readonly string[], datasetIds: readonly string[]): string {
  return `${JSON.stringify({ arm: { deadline_ns: deadlineNs.toString(), apps, dataset_ids: datasetIds } })}\n`;
}

export const DISARM_LINE = `${JSON.stringify({ disarm: true })}\n`;

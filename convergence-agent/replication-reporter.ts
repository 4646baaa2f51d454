/**
 * The replication report (docs/DESIGN.md §38): when a replication step ends (the replica holds
 * its snapshot) or a pair's status changes (error, diverged, paused), this primary's replication
 * status alone goes to the control service at once, instead of waiting for the loop's next
 * report (which comes only after the pass under way and a discovery: 0.5–0.75 s of lag at the
 * p50 and p99 of `bench:replication`).
 *
 * Coalesced: at most one report in flight; a change while one is in flight makes one more
 * report afterwards, of the status as it is then (the latest wins; the ones between are never
 * sent). A failed report is retried a few times with backoff, each time with the status as it
 * is then, then given up: the loop's next full report carries the same status and `seq`, so
 * nothing is lost but time. Nothing is sent when the status's `seq` was already delivered.
 */
import { backoffDelay, type Backoff } from '#common/backoff.ts';
import type { Clock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import type { ReplicationReport } from '#common/model.ts';
import type { ReplicationStatusReport } from './report.ts';

export interface ReplicationReporterDeps {
  identity: { uuid: string; era: string };
  /** The scheduler's statuses with their order (ReplicationScheduler.statusReport). */
  status(): ReplicationStatusReport;
  /** ControlChannel.replicationReport. */
  send(report: ReplicationReport, signal: AbortSignal): Promise<{ merged: boolean }>;
  clock: Clock;
  log: Logger;
  /** Attempts after the first failure before giving up until the next change. Default 3. */
  retries?: number;
  /** Between attempts. Default 200 ms doubling to 2 s. */
  backoff?: Backoff;
}

const DEFAULT_BACKOFF: Backoff = { initialMs: 200, capMs: 2_000 };

export class ReplicationReporter {
  private inFlight: Promise<void> | null = null;
  private pending = false;
  /** The highest seq the control service answered for (merged or not: it holds that one or newer). */
  private delivered = -1;
  private readonly stopping = new AbortController();

  constructor(private readonly deps: ReplicationReporterDeps) {}

  /** The status changed (ReplicationScheduler's onChange): reports it now, or once the report in flight ends. Never throws. */
  changed(): void {
    if (this.stopping.signal.aborted) return;
    this.pending = true;
    this.inFlight ??= this.run().finally(() => (this.inFlight = null));
  }

  /** The loop's full report carrying `seq` was delivered: no replication report needed for it. */
  reported(seq: number | null): void {
    if (seq !== null && seq > this.delivered) this.delivered = seq;
  }

  /** Waits for the report in flight to end (its retries cut short). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.inFlight;
  }

  /** Resolves when no report is in flight (tests). */
  async idle(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  private async run(): Promise<void> {
    const { clock, log, identity } = this.deps;
    const retries = this.deps.retries ?? 3;
    let failures = 0;
    while (this.pending && !this.stopping.signal.aborted) {
      this.pending = false;
      const { seq, statuses } = this.deps.status();
      if (seq === null || seq <= this.delivered) continue;
      try {
        const answer = await this.deps.send({ uuid: identity.uuid, era: identity.era, seq, replication: statuses }, this.stopping.signal);
        if (seq > this.delivered) this.delivered = seq;
        failures = 0;
        if (!answer.merged) log.debug({ seq }, 'replication report not merged: the control service holds a newer status, or no report of this node yet');
      } catch (err) {
        if (this.stopping.signal.aborted) return;
        failures += 1;
        if (failures > retries) {
          log.warn({ err, seq, attempts: failures }, 'replication report not delivered: the next report carries it');
          return;
        }
        // Tried again with the status as it is by then.
        this.pending = true;
        await clock.sleep(backoffDelay(this.deps.backoff ?? DEFAULT_BACKOFF, failures), this.stopping.signal).catch(() => undefined);
      }
    }
  }
}

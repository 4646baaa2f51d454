/**
 * A Clock that moves only when a test says so. `advance(ms)` wakes every sleeper whose
 * deadline has come, in deadline order (ties in the order they began), and lets their
 * continuations run before the next one wakes; so a loop that sleeps again after waking is
 * woken again within the same `advance` when its next deadline is also due.
 */
import type { Clock } from '../clock.ts';

interface Sleeper {
  at: number;
  seq: number;
  resolve: () => void;
}

export class FakeClock implements Clock {
  private time: number;
  private readonly origin: number;
  private sleepers: Sleeper[] = [];
  private seq = 0;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.time = start;
    this.origin = start;
  }

  now(): number {
    return this.time;
  }

  /** Milliseconds since the clock was made; moves with `now()`. */
  monotonic(): number {
    return this.time - this.origin;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const sleeper: Sleeper = {
        at: this.time + Math.max(0, ms),
        seq: this.seq++,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          resolve();
        },
      };
      const onAbort = (): void => sleeper.resolve();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.sleepers.push(sleeper);
    });
  }

  /** Number of pending sleeps. */
  get pending(): number {
    return this.sleepers.length;
  }

  /** Moves time forward by `ms`, waking sleepers as their deadlines pass. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const next = this.sleepers.filter((s) => s.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.time = Math.max(this.time, next.at);
      next.resolve();
      await settle();
    }
    this.time = end;
    await settle();
  }

  /**
   * Advances to the earliest pending deadline and wakes what is due then; returns false when
   * nothing sleeps. For loops a test wants to step through one wake-up at a time.
   */
  async tick(): Promise<boolean> {
    const next = this.sleepers.reduce<Sleeper | undefined>((a, s) => (a === undefined || s.at < a.at ? s : a), undefined);
    if (!next) return false;
    await this.advance(Math.max(0, next.at - this.time));
    return true;
  }

  /**
   * Settles `work`, which waits both on this clock and on real I/O: whenever something sleeps
   * here, time jumps to the earliest wake-up; otherwise real time passes (1 ms) for the I/O.
   * Fits a test with one activity: a second one sleeping here would be woken while the first
   * is still busy with I/O.
   */
  async run<T>(work: Promise<T>): Promise<T> {
    let outcome: { value: T } | { error: unknown } | null = null;
    work.then(
      (value) => (outcome = { value }),
      (error: unknown) => (outcome = { error }),
    );
    await this.runUntil(() => outcome !== null);
    const settled = outcome as unknown as { value: T } | { error: unknown };
    if ('error' in settled) throw settled.error;
    return settled.value;
  }

  /** Like `run`, until `done()` holds. */
  async runUntil(done: () => boolean): Promise<void> {
    while (!done()) {
      if (!(await this.tick())) await new Promise((r) => setTimeout(r, 1));
    }
  }
}

/** Lets pending promise continuations (and immediate I/O callbacks) run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

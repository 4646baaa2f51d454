/**
 * The agent's side of its fence watchdog process (docs/DESIGN.md §18 "The fence watchdog"):
 * starts `bin/drover-fence-watchdog.js` on the first arm, writes each new deadline to its stdin
 * (an absolute time on the host's monotonic clock, so a message read late still means the same
 * moment), starts it again if it ended (at most every `restartAfterMs`), and disarms it when the
 * agent stops on purpose. The process is not in the agent's way: a SIGSTOP of the agent leaves
 * it running, and its records go to the agent's stdout.
 */
import { nodeFlagsOf } from '#common/node-flags.ts';
import type { Logger } from '#common/log.ts';
import type { OutsideFence } from '../fence.ts';
import type { CommandRunner, StreamingProcess } from '../zfs/command.ts';
import { armLine, DISARM_LINE } from './deadline.ts';

export interface WatchdogProcessOptions {
  runner: CommandRunner;
  /** bin/drover-fence-watchdog.js */
  program: string;
  /** --docker-socket, --pool, --mount-root, --node-uuid, --stop-timeout-seconds */
  args: readonly string[];
  log: Logger;
  /** The host's monotonic clock in ns (process.hrtime.bigint by default). */
  nowNs?: () => bigint;
  /** Epoch ms, for the restart pacing. */
  nowMs?: () => number;
  restartAfterMs?: number;
}

export class WatchdogProcess implements OutsideFence {
  private child: StreamingProcess | null = null;
  private alive = false;
  private startedAt = -Infinity;
  private last = '';
  private stopping = false;

  constructor(private readonly o: WatchdogProcessOptions) {}

  /** The watchdog's pid while it runs (tests). */
  get pid(): number | null {
    return this.alive ? (this.child?.pid ?? null) : null;
  }

  arm(since: number, inMs: number, apps: readonly string[], datasetIds: readonly string[]): void {
    if (this.stopping) return;
    const key = `${since}|${apps.join(',')}|${datasetIds.join(',')}`;
    if (key === this.last && this.alive) return;
    if (!this.alive && !this.start()) return;
    const nowNs = (this.o.nowNs ?? process.hrtime.bigint)();
    const deadline = nowNs + BigInt(Math.round(inMs * 1e6));
    this.child!.stdin!.write(armLine(deadline > 0n ? deadline : 0n, apps, datasetIds));
    this.last = key;
  }

  async disarm(): Promise<void> {
    const child = this.child;
    this.stopping = true;
    if (child === null || !this.alive) return;
    child.stdin?.end(DISARM_LINE);
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await child.exited;
    clearTimeout(timer);
  }

  private start(): boolean {
    const now = (this.o.nowMs ?? Date.now)();
    if (now - this.startedAt < (this.o.restartAfterMs ?? 5_000)) return false;
    this.startedAt = now;
    const { runner, program, args, log } = this.o;
    const child = runner.spawn(process.execPath, [...nodeFlagsOf(program), program, ...args], { stdin: 'pipe', stdout: 1 });
    // A write after it ended fails on the pipe; the exit below is what counts.
    child.stdin?.on('error', () => undefined);
    this.child = child;
    this.alive = true;
    this.last = '';
    log.info({ pid: child.pid }, 'fence watchdog started');
    void child.exited.then((r) => {
      if (this.child !== child) return;
      this.alive = false;
      if (this.stopping) return;
      log.warn({ pid: child.pid, exitCode: r.exitCode, signal: r.signal, stderr: r.stderr.slice(0, 500) }, 'fence watchdog ended');
    });
    return true;
  }
}

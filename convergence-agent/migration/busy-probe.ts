/**
 * How busy this process was over an interval (docs/DESIGN.md §41): the CPU it used and the
 * longest its event loop was late. Read over the cutover's `handoff` post, it tells an answer
 * this process took long to *read* (its loop late, its own CPU high: work of its own ahead of
 * it; loop late, CPU low: no core for it) from one that came late.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface BusyReading {
  /** CPU this process used (user + system), ms. */
  cpuMs: number;
  /** The longest the event loop ran late (10 ms resolution), ms. */
  loopDelayMaxMs: number;
}

/** Starts measuring; the function returned stops and reads (once). */
export function startBusyProbe(): () => BusyReading {
  const cpu = process.cpuUsage();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  return () => {
    loop.disable();
    const used = process.cpuUsage(cpu);
    // max is in ns and includes the 10 ms resolution itself; 0 when no sample was taken.
    const max = loop.count > 0 ? loop.max / 1e6 - 10 : 0;
    return { cpuMs: Math.round((used.user + used.system) / 1000), loopDelayMaxMs: Math.max(0, Math.round(max)) };
  };
}

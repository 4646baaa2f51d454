/**
 * The application's own stop and start-to-ready, measured in place on the node it runs on
 * (no move): the part of a stop-and-start move that is the application's, not drover's.
 * Each is the median of three stops and starts.
 *
 *   own stop   from Docker's `kill` event (the stop signal sent) to its `die` event (the
 *              container's processes gone)
 *   own start  from Docker's `start` event (the process started) to the first answer the
 *              benchmark's client accepts as ready (polled every 10 ms)
 *
 * Both from dockerd's own event clock, so neither includes the docker CLI's start-up. The
 * start excludes Docker's container setup before `start` — which drover's warm start also
 * keeps out of a move — so the overhead computed from these is, if anything, too high.
 *
 * The node's agent still runs: it may see the stopped container first and start it again
 * itself (restart: always). Either way the `start` event says when the process started.
 *
 * `load`: the client the application is moved under (a writer committing one write per
 * acknowledgement) runs through every stop and start here too. An application's stop under
 * writes is not its idle stop (PostgreSQL's fast shutdown under a committing writer waits for
 * the commit in flight and checkpoints what the writer dirtied), and a baseline measured idle
 * would charge that difference to drover.
 */
import { execa } from 'execa';
import { systemClock } from '#common/clock.ts';

export interface OwnTimes {
  stopMs: number;
  startMs: number;
  /**
   * The start-to-ready again after the kernel's page cache was dropped (`--cold-start`): the
   * application's data read as a node that just received it reads it, not from memory. null
   * when not measured.
   */
  coldStartMs: number | null;
}

async function events(dockerHost: string, container: string, since: number): Promise<{ at: number; action: string }[]> {
  const { stdout } = await execa('docker', ['-H', dockerHost, 'events', '--filter', `container=${container}`, '--since', String(since / 1000), '--until', String(Date.now() / 1000 + 1), '--format', '{{.TimeNano}} {{.Action}}'], { timeout: 30_000 });
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [nanos, action] = line.split(' ');
      return { at: Number(BigInt(nanos!) / 1000n) / 1000, action: action ?? '' };
    });
}

/** A client writing to the application: started before the first stop, stopped after the last start. */
export interface Load {
  start(): void;
  stop(): Promise<unknown>;
}

export interface OwnOptions {
  /** An argv exec'd in the container before each stop, as a move runs its before_stop hook. */
  hook?: string[];
  /** Once more with the page cache dropped between the stop and the start. */
  cold?: boolean;
  samples?: number;
  /** The move's client load, running through every stop and start (see above). */
  load?: Load;
}

/** Stops and starts `container` on `dockerHost` `samples` times; the medians. */
export async function ownStopStart(dockerHost: string, container: string, ready: () => Promise<boolean>, options: OwnOptions = {}): Promise<OwnTimes> {
  const { hook, cold = false, samples = 3, load } = options;
  if (load === undefined) return measure(dockerHost, container, ready, hook, cold, samples);
  load.start();
  // As a move does: the writer has been writing for a while when the stop comes.
  await systemClock.sleep(2_000);
  try {
    return await measure(dockerHost, container, ready, hook, cold, samples);
  } finally {
    await load.stop();
  }
}

async function measure(dockerHost: string, container: string, ready: () => Promise<boolean>, hook: string[] | undefined, cold: boolean, samples: number): Promise<OwnTimes> {
  // The median of `samples` stops and starts: one Redis with 256 MiB of keys started in 1.1 s
  // and then in 2.3 s on this machine, so a single sample moves the overhead by a second.
  const warm: { stopMs: number; startMs: number }[] = [];
  for (let i = 0; i < samples; i++) warm.push(await stopStart(dockerHost, container, ready, hook, false));
  const coldStarts: number[] = [];
  for (let i = 0; cold && i < samples; i++) coldStarts.push((await stopStart(dockerHost, container, ready, hook, true)).startMs);
  return { stopMs: median(warm.map((w) => w.stopMs)), startMs: median(warm.map((w) => w.startMs)), coldStartMs: cold ? median(coldStarts) : null };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

async function stopStart(dockerHost: string, container: string, ready: () => Promise<boolean>, hook: string[] | undefined, dropCache: boolean): Promise<{ stopMs: number; startMs: number }> {
  const docker = (...args: string[]) => execa('docker', ['-H', dockerHost, ...args], { timeout: 300_000 });
  if (hook) await docker('exec', container, ...hook);
  const since = Date.now() - 1_000;
  await docker('stop', container);
  // The whole machine's clean page cache (root only): what a node that never read the files has.
  if (dropCache) await execa('sh', ['-c', 'sync && echo 1 > /proc/sys/vm/drop_caches'], { timeout: 120_000 });
  await docker('start', container).catch(() => undefined); // the agent may have started it already
  const deadline = Date.now() + 300_000;
  let readyAt: number | null = null;
  while (readyAt === null) {
    if (Date.now() > deadline) throw new Error(`${container} not ready within 300 s of its start`);
    if (await ready().catch(() => false)) readyAt = Date.now();
    else await systemClock.sleep(10);
  }
  const seen = await events(dockerHost, container, since);
  const kill = seen.find((e) => e.action === 'kill');
  const die = seen.find((e) => e.action === 'die');
  const start = seen.find((e) => e.action === 'start' && die !== undefined && e.at >= die.at);
  if (!kill || !die || !start) throw new Error(`docker events of ${container} lack kill/die/start: ${JSON.stringify(seen)}`);
  return { stopMs: Math.round(die.at - kill.at), startMs: Math.round(readyAt - start.at) };
}

/**
 * Where one move's cutover went, read from the two agents' own logs (pino JSON lines, each
 * with its `time` in ms since the epoch; one machine, one clock):
 *   source  `migration handed off` — steps hold, stop, finalSend, handoff (ms);
 *           the last `snapshot sent` before it — its `prepare` (the final snapshot with the
 *           step's bookkeeping) is split out of finalSend;
 *           `before-stop hook` and `pre-copy round sent` — the hook and the round after it,
 *           both before the cutover (the application still serves meanwhile);
 *   target  after the handoff: `set-dataset-readonly`/`mount-dataset` applied (target mount),
 *           `open-container-gate`/`start-container` applied (gate open), `health changed` to
 *           healthy (app ready), the first `post-migration-update` applied (release).
 * Each target phase is the time since the previous mark, so the phases add up to the
 * cutover as the agents saw it. With the control service's and the proxies' logs (`others`),
 * two more, on the client's side of the release (the target agent's own log line for its post
 * comes after the proxies switched, when its event loop gets to the answer):
 *   accepted  app ready → the control service's `migration entered a phase` release
 *   switched  → the first proxy's `held connections released` of this migration (the
 *             held clients forwarded to the target); `heldMs`: its oldest held connection's wait
 */
import { readFile } from 'node:fs/promises';
import { parseLogLines, type LogLine } from './log-lines.ts';

export interface Breakdown {
  hook: number | null;
  lastRound: number | null;
  hold: number;
  stop: number;
  finalSnapshot: number;
  finalSend: number;
  handoff: number;
  targetMount: number | null;
  gateOpen: number | null;
  appReady: number | null;
  release: number | null;
  accepted: number | null;
  switched: number | null;
  /** The longest a client connection was held by the proxy that released first. */
  heldMs: number | null;
  /** From the cutover's start to the target's release post. */
  totalMs: number | null;
  /**
   * Absolute times (ms since the epoch, the agents' clock) of the target's `gate opened` line
   * (the marker and the FIFO written) and of its `health changed` to healthy: the ends of
   * `appReady` that app-start.ts splits with the application's own log.
   */
  marks: { gateOpenedAt: number | null; healthyAt: number | null };
}

export const PHASES: (keyof Omit<Breakdown, 'totalMs'>)[] = ['hook', 'lastRound', 'hold', 'stop', 'finalSnapshot', 'finalSend', 'handoff', 'targetMount', 'gateOpen', 'appReady', 'release', 'accepted', 'switched', 'heldMs'];

type Line = LogLine;

async function lines(path: string): Promise<Line[]> {
  return parseLogLines(await readFile(path, 'utf8').catch(() => ''));
}

const MOUNTS = new Set(['set-dataset-readonly', 'mount-dataset']);
const STARTS = new Set(['open-container-gate', 'start-container']);

/** The breakdown of migration `id`, or null when the source's log has no handoff for it. */
export async function breakdownOf(id: string, sourceLog: string, targetLog: string, others?: { controlLog: string; proxyLogs: string[] }): Promise<Breakdown | null> {
  const source = await lines(sourceLog);
  const handedIndex = source.findIndex((l) => l.msg === 'migration handed off' && l.migration === id);
  if (handedIndex < 0) return null;
  const handed = source[handedIndex]!;
  const steps = handed.steps as Record<string, number>;
  const cutoverMs = handed.cutoverMs as number;
  const cutoverAt = handed.time - cutoverMs;
  const finalSent = source.slice(0, handedIndex).findLast((l) => l.msg === 'snapshot sent');
  const prepare = Math.min(steps.finalSend ?? 0, ((finalSent?.steps as Record<string, number> | undefined)?.prepare ?? 0));
  const hook = source.findLast((l) => l.msg === 'before-stop hook ran' && l.migration === id);
  const lastRound = source.slice(0, handedIndex).findLast((l) => l.msg === 'pre-copy round sent' && l.migration === id && l.afterHook === true);

  const handoffDone = handed.time;
  const target = (await lines(targetLog)).filter((l) => l.time >= cutoverAt);
  const applied = (kinds: Set<string>) => target.filter((l) => l.msg === 'change applied' && kinds.has(String(l.change)));
  const mounted = applied(MOUNTS).at(-1)?.time ?? null;
  const started = applied(STARTS).find((l) => mounted === null || l.time >= mounted)?.time ?? null;
  const gateOpened = target.find((l) => l.msg === 'gate opened' && l.gate === id)?.time ?? null;
  const healthy = target.find((l) => l.msg === 'health changed' && l.health === 'healthy' && (started === null || l.time >= started))?.time ?? null;
  const released = target.find((l) => l.msg === 'change applied' && l.change === 'post-migration-update' && l.subject === `migration:${id}`)?.time ?? null;
  const since = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : a - b);
  let accepted: number | null = null;
  let switched: Line | null = null;
  if (others) {
    accepted = (await lines(others.controlLog)).find((l) => l.msg === 'migration entered a phase' && l.corr === id && l.phase === 'release')?.time ?? null;
    const proxies = (await Promise.all(others.proxyLogs.map(lines))).flat().filter((l) => l.msg === 'held connections released' && l.corr === id && l.time >= cutoverAt);
    switched = proxies.sort((a, b) => a.time - b.time)[0] ?? null;
  }
  return {
    hook: hook ? Number(hook.ms) : null,
    lastRound: lastRound ? Number(lastRound.ms) : null,
    hold: steps.hold ?? 0,
    stop: steps.stop ?? 0,
    finalSnapshot: prepare,
    finalSend: (steps.finalSend ?? 0) - prepare,
    handoff: steps.handoff ?? 0,
    targetMount: since(mounted, handoffDone),
    gateOpen: since(started, mounted ?? handoffDone),
    // Without a health check the target is ready once started: nothing to wait for.
    appReady: since(healthy ?? started, started),
    release: since(released, healthy ?? started),
    accepted: since(accepted, healthy ?? started),
    switched: since(switched?.time ?? null, accepted),
    heldMs: switched ? Number(switched.oldestHeldMs) : null,
    totalMs: since(released, cutoverAt),
    marks: { gateOpenedAt: gateOpened, healthyAt: healthy },
  };
}

/** One line: `hold 107 · stop 133 · …` (phases without a figure are left out). */
export function describeBreakdown(b: Breakdown): string {
  return PHASES.filter((p) => b[p] !== null)
    .map((p) => `${p} ${b[p]}`)
    .join(' · ');
}

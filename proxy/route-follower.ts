/**
 * The proxy's one loop: long-poll the route source, apply what is new, acknowledge it.
 *
 * The acknowledgement is what a source agent waits for before it stops an application
 * (DESIGN.md): it is sent after `apply` resolved, and retried before anything else until it
 * lands. With the source unreachable nothing is applied or removed — the proxy keeps serving
 * the last routes it knew (unknown is not empty) — and polling retries with capped,
 * jittered backoff.
 */
import { backoffDelay, type Backoff } from '#common/backoff.ts';
import { systemClock, type Clock } from '#common/clock.ts';
import { isDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { RoutingProxy } from './proxy.ts';
import type { RouteSource } from './route-source.ts';

export interface FollowOptions {
  source: RouteSource;
  proxy: Pick<RoutingProxy, 'apply' | 'version'>;
  nodeUuid: string;
  log: Logger;
  signal: AbortSignal;
  /** Long-poll wait the source is asked for. */
  waitMs?: number;
  /** Retries of a failed poll or acknowledgement; default ROUTE_RETRY. */
  backoff?: Backoff;
  /** Acknowledge the current version again after this long, for a restarted control service. */
  ackRefreshMs?: number;
  /**
   * The proxy's table was restored from its saved copy (route-cache.ts): its version is not
   * acknowledged, and the first poll asks with no version so the first answer replaces it.
   */
  restored?: boolean;
  /** Jitter source in [0, 1); an input so tests can pin it. */
  random?: () => number;
  clock?: Clock;
}

/** 100 ms doubling to 5 s, each delay cut by up to half at random: proxies of a restarted control service do not return in step. */
export const ROUTE_RETRY: Backoff = { initialMs: 100, capMs: 5_000, jitter: 0.5 };

/** Runs until `signal` aborts; never rejects. */
export async function followRoutes(o: FollowOptions): Promise<void> {
  const waitMs = o.waitMs ?? 25_000;
  const policy = o.backoff ?? ROUTE_RETRY;
  const clock = o.clock ?? systemClock;
  const ackRefreshMs = o.ackRefreshMs ?? 30_000;
  const random = o.random ?? Math.random;
  let failures = 0;
  let acked: number | null = null;
  let ackedAt = -Infinity;
  // A restored table's version means nothing to the control service: neither acked nor polled after.
  let restored = o.restored === true;

  const backoff = async (err: unknown, what: string): Promise<void> => {
    failures++;
    const delay = backoffDelay(policy, failures, random);
    // The first failure and then every doubling is worth a line; the rest would flood.
    if ((failures & (failures - 1)) === 0) {
      o.log.warn({ err, failures, retryInMs: delay, version: o.proxy.version }, `${what} failed, serving the last known routes`);
    }
    await clock.sleep(delay, o.signal);
  };

  while (!o.signal.aborted) {
    const version = restored ? null : o.proxy.version;
    if (version !== null && (acked !== version || clock.monotonic() - ackedAt > ackRefreshMs)) {
      try {
        await o.source.ack({ node_uuid: o.nodeUuid, version }, o.signal);
        if (acked !== version) o.log.debug({ version }, 'route table acknowledged');
        acked = version;
        ackedAt = clock.monotonic();
      } catch (err) {
        if (o.signal.aborted) break;
        await backoff(err, 'route acknowledgement');
        continue;
      }
    }
    try {
      const started = clock.monotonic();
      const table = await o.source.poll(version, waitMs, o.signal);
      if (failures > 0) o.log.info({ failures, version: table.version }, 'route source reachable again');
      failures = 0;
      if (restored) {
        restored = false;
        await o.proxy.apply(table);
      } else if (table.version !== version) await o.proxy.apply(table);
      // A source that answers an unchanged version at once would spin this loop.
      else if (clock.monotonic() - started < 50) await clock.sleep(100, o.signal);
    } catch (err) {
      if (o.signal.aborted) break;
      if (!isDroverError(err) || !err.retryable) o.log.error({ err }, 'route table not applied');
      await backoff(err, 'route poll');
    }
  }
}

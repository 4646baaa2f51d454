import { describe, expect, it } from 'vitest';
import type { RouteAck, RouteTable } from '#common/channel.ts';
import { DroverError } from '#common/errors.ts';
import { silentLogger } from '#common/log.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { followRoutes } from './route-follower.ts';
import type { RouteSource } from './route-source.ts';

const NODE = '00000000-0000-4000-8000-000000000001';

/** A scripted source: each poll takes the next answer (a table or an error). */
function scriptedSource(answers: (RouteTable | Error)[], events: string[], failAcks = 0): RouteSource {
  let acksToFail = failAcks;
  return {
    async poll(after, _waitMs, signal) {
      const next = answers.shift();
      events.push(`poll after=${after}`);
      if (next === undefined) {
        // A long-poll with nothing new: it ends only when the follower is stopped.
        return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
      }
      if (next instanceof Error) throw next;
      return next;
    },
    async ack(ack: RouteAck) {
      if (acksToFail-- > 0) {
        events.push(`ack ${ack.version} failed`);
        throw new DroverError('DROVER_CONTROL_UNREACHABLE', 'down', { retryable: true });
      }
      events.push(`ack ${ack.version}`);
    },
  };
}

function fakeProxy(events: string[]) {
  return {
    version: null as number | null,
    async apply(table: RouteTable) {
      events.push(`apply ${table.version}`);
      this.version = table.version;
    },
  };
}

async function run(source: RouteSource, proxy: ReturnType<typeof fakeProxy>, until: () => boolean, restored = false): Promise<void> {
  const abort = new AbortController();
  const clock = new FakeClock();
  const backoff = { initialMs: 1, capMs: 4, jitter: 0.5 };
  const done = followRoutes({ source, proxy, nodeUuid: NODE, log: silentLogger(), signal: abort.signal, backoff, random: () => 0, clock, restored });
  // Time moves only here: backoffs and the spin guard's pause end as the clock passes them.
  for (let i = 0; i < 500 && !until(); i++) await clock.advance(5);
  abort.abort();
  await done;
}

describe('followRoutes', () => {
  it('does not acknowledge a table restored from its saved copy, and takes the first answer over it whatever its version', async () => {
    const events: string[] = [];
    const proxy = fakeProxy(events);
    proxy.version = 9; // restored from routes.json
    await run(scriptedSource([new DroverError('DROVER_CONTROL_UNREACHABLE', 'down', { retryable: true }), { version: 9, routes: [] }], events), proxy, () => events.includes('ack 9'), true);
    expect(events.slice(0, 4)).toEqual(['poll after=null', 'poll after=null', 'apply 9', 'ack 9']);
  });

  it('applies a new version and acknowledges it before polling again', async () => {
    const events: string[] = [];
    const proxy = fakeProxy(events);
    await run(scriptedSource([{ version: 4, routes: [] }], events), proxy, () => events.length >= 4);
    expect(events).toEqual(['poll after=null', 'apply 4', 'ack 4', 'poll after=4']);
  });

  it('keeps the last table while the source fails, and applies the next once it answers', async () => {
    const events: string[] = [];
    const proxy = fakeProxy(events);
    const down = new DroverError('DROVER_CONTROL_UNREACHABLE', 'down', { retryable: true });
    await run(scriptedSource([{ version: 1, routes: [] }, down, down, down, { version: 2, routes: [] }], events), proxy, () => events.includes('poll after=2'));
    expect(events).toEqual(['poll after=null', 'apply 1', 'ack 1', 'poll after=1', 'poll after=1', 'poll after=1', 'poll after=1', 'apply 2', 'ack 2', 'poll after=2']);
  });

  it('retries a failed acknowledgement before anything else', async () => {
    const events: string[] = [];
    const proxy = fakeProxy(events);
    await run(scriptedSource([{ version: 7, routes: [] }], events, 2), proxy, () => events.includes('poll after=7'));
    expect(events).toEqual(['poll after=null', 'apply 7', 'ack 7 failed', 'ack 7 failed', 'ack 7', 'poll after=7']);
  });

  it('does not apply an answer that repeats the version it has', async () => {
    const events: string[] = [];
    const proxy = fakeProxy(events);
    await run(scriptedSource([{ version: 3, routes: [] }, { version: 3, routes: [] }], events), proxy, () => events.filter((e) => e.startsWith('poll')).length >= 3);
    expect(events.filter((e) => e.startsWith('apply'))).toEqual(['apply 3']);
  });
});

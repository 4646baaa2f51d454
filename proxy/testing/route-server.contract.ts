/**
 * What the proxy relies on from the control service's route endpoints (common/channel.ts),
 * as one suite spoken through the proxy's own client (`httpRouteSource`): run on the
 * stand-in the proxy's tests use (testing/route-server.test.ts) and on the real control
 * service (test/proxy/route-server.test.ts). Where they disagree, the control service is right.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { httpRouteSource } from '../route-source.ts';

export interface RouteServiceUnderTest {
  baseUrl: string;
  /** Changes the route table (its version moves on), as a deploy would. */
  change(): Promise<void>;
  /** Whether the service has recorded `nodeUuid`'s ack of `version` (or a newer one). */
  acked(nodeUuid: string, version: number): Promise<boolean>;
  close(): Promise<void>;
}

async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

export function routeServiceContract(name: string, make: () => Promise<RouteServiceUnderTest>): void {
  describe(`${name} (route service contract)`, () => {
    const signal = () => AbortSignal.timeout(30_000);
    const withService = (test: (t: RouteServiceUnderTest, node: string) => Promise<void>) => async () => {
      const t = await make();
      try {
        await test(t, randomUUID());
      } finally {
        await t.close();
      }
    };

    it(
      'answers at once with the table when the proxy has none, or one of another version',
      withService(async (t, node) => {
        const source = httpRouteSource(t.baseUrl, node);
        const first = await within(source.poll(null, 10_000, signal()), 2_000);
        expect(first).toMatchObject({ version: expect.any(Number), routes: expect.any(Array) });
        const { version } = first as Exclude<typeof first, 'pending'>;
        expect(await within(source.poll(version + 1000, 10_000, signal()), 2_000)).toMatchObject({ version });
      }),
    );

    it(
      'holds a long-poll while the table is unchanged, and answers with the newer table as soon as it changes',
      withService(async (t, node) => {
        const source = httpRouteSource(t.baseUrl, node);
        const { version } = await source.poll(null, 10_000, signal());
        const polling = source.poll(version, 10_000, signal());
        expect(await within(polling, 300)).toBe('pending');
        await t.change();
        const next = await within(polling, 2_000);
        expect(next).not.toBe('pending');
        expect((next as Exclude<typeof next, 'pending'>).version).toBeGreaterThan(version);
        expect((next as Exclude<typeof next, 'pending'>).routes.length).toBeGreaterThan(0);
      }),
    );

    it(
      'answers with the unchanged table after about wait_ms when nothing changes',
      withService(async (t, node) => {
        const source = httpRouteSource(t.baseUrl, node);
        const { version } = await source.poll(null, 10_000, signal());
        const started = Date.now();
        expect(await within(source.poll(version, 300, signal()), 5_000)).toMatchObject({ version });
        expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      }),
    );

    it(
      "records a proxy's ack of a version",
      withService(async (t, node) => {
        const source = httpRouteSource(t.baseUrl, node);
        await t.change();
        const { version } = await source.poll(null, 10_000, signal());
        expect(await t.acked(node, version)).toBe(false);
        await source.ack({ node_uuid: node, version }, signal());
        expect(await t.acked(node, version)).toBe(true);
      }),
    );
  });
}

/**
 * The behaviour every ControlChannel promises the agent's loop, as one suite
 * (docs/DESIGN.md §14): run on the in-memory fake (testing/fake-control-channel.test.ts) and on the HTTP
 * channel against the real control service (test/agent/control-channel.test.ts). Where they
 * disagree, the control service is right and the fake is changed.
 */
import { describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import type { NodeReport } from '#common/model.ts';
import type { ControlChannel } from '../control-channel.ts';

export interface ChannelUnderTest {
  channel: ControlChannel;
  /** A node the control service knows, with a desired view. */
  nodeUuid: string;
  /** The node's report, as it last sent it (sending it again changes nothing). */
  report: NodeReport;
  /** Changes the node's desired view (its version moves on), as an operator's change would. */
  change(): Promise<void>;
  close(): Promise<void>;
}

/** Settles within `ms`, or says it is still pending. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

export function controlChannelContract(name: string, make: () => Promise<ChannelUnderTest>): void {
  describe(`${name} (ControlChannel contract)`, () => {
    it("answers at once with the node's view when the agent has none, or one of another version", async () => {
      const t = await make();
      try {
        const first = await within(t.channel.waitForDesired(t.nodeUuid, null, 10_000), 2_000);
        expect(first).not.toBe('pending');
        const { version } = first as Exclude<typeof first, 'pending'>;
        expect(version).toEqual(expect.any(Number));
        const other = await within(t.channel.waitForDesired(t.nodeUuid, version + 1000, 10_000), 2_000);
        expect(other).toMatchObject({ version });
      } finally {
        await t.close();
      }
    });

    it('holds a long-poll while the view is unchanged, and answers with the newer view as soon as it changes', async () => {
      const t = await make();
      try {
        const { version } = await t.channel.waitForDesired(t.nodeUuid, null, 10_000);
        const polling = t.channel.waitForDesired(t.nodeUuid, version, 10_000);
        expect(await within(polling, 300)).toBe('pending');
        await t.change();
        const next = await within(polling, 2_000);
        expect(next).not.toBe('pending');
        expect((next as Exclude<typeof next, 'pending'>).version).toBeGreaterThan(version);
      } finally {
        await t.close();
      }
    });

    it('answers with the unchanged view after about waitMs when nothing changes', async () => {
      const t = await make();
      try {
        const { version } = await t.channel.waitForDesired(t.nodeUuid, null, 10_000);
        const started = Date.now();
        const same = await within(t.channel.waitForDesired(t.nodeUuid, version, 300), 5_000);
        expect(same).toMatchObject({ version });
        expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      } finally {
        await t.close();
      }
    });

    it('gives up a long-poll when its signal aborts', async () => {
      const t = await make();
      try {
        const { version } = await t.channel.waitForDesired(t.nodeUuid, null, 10_000);
        const abort = new AbortController();
        const polling = t.channel.waitForDesired(t.nodeUuid, version, 10_000, abort.signal).then(
          () => 'answered',
          (err: unknown) => err,
        );
        setTimeout(() => abort.abort(), 100);
        const outcome = await within(polling, 2_000);
        expect(outcome).not.toBe('pending');
        expect(outcome).not.toBe('answered');
        expect(isDroverError(outcome)).toBe(true);
      } finally {
        await t.close();
      }
    });

    it("answers a report with the version of the node's view", async () => {
      const t = await make();
      try {
        const answer = await t.channel.report(t.report);
        const view = await t.channel.waitForDesired(t.nodeUuid, null, 10_000);
        expect(answer).toEqual({ version: view.version });
        await t.change();
        const again = await t.channel.report(t.report);
        const changed = await t.channel.waitForDesired(t.nodeUuid, null, 10_000);
        expect(changed.version).toBeGreaterThan(view.version);
        expect(again).toEqual({ version: changed.version });
      } finally {
        await t.close();
      }
    });

    it('merges a replication report newer than the last full report, and keeps the newer one against an older or repeated seq', async () => {
      const t = await make();
      try {
        await t.channel.report({ ...t.report, replication_seq: 1_000 });
        const base = { uuid: t.nodeUuid, era: t.report.era, replication: [] };
        expect(await t.channel.replicationReport({ ...base, seq: 1_001 })).toEqual({ merged: true });
        expect(await t.channel.replicationReport({ ...base, seq: 1_001 })).toEqual({ merged: false });
        expect(await t.channel.replicationReport({ ...base, seq: 999 })).toEqual({ merged: false });
        // A full report built before the replication report (a lower seq) does not reset the order.
        await t.channel.report({ ...t.report, replication_seq: 1_000 });
        expect(await t.channel.replicationReport({ ...base, seq: 1_001 })).toEqual({ merged: false });
        expect(await t.channel.replicationReport({ ...base, seq: 1_002 })).toEqual({ merged: true });
      } finally {
        await t.close();
      }
    });

    it('does not merge a replication report of another era than the last full report', async () => {
      const t = await make();
      try {
        await t.channel.report({ ...t.report, replication_seq: 1 });
        expect(await t.channel.replicationReport({ uuid: t.nodeUuid, era: `${t.report.era}-next`, seq: 2, replication: [] })).toEqual({ merged: false });
      } finally {
        await t.close();
      }
    });
  });
}

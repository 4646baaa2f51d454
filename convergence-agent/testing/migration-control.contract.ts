/**
 * The contract every MigrationControl obeys (Flocker's make_iblockdeviceapi_tests): what a
 * step's answer is, which steps are refused and how, what a read returns. Runs against the
 * in-memory fake (migration/migration-control.test.ts) and against the real control service
 * over HTTP (test/agent/migration-control-contract.test.ts), so the fake the source job's
 * tests use cannot drift from the service. Where they disagree the real service is right.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MigrationUpdate } from '#common/channel.ts';
import type { Migration, MigrationPhase } from '#common/model.ts';
import type { MigrationControl } from '../migration/migration-control.ts';

export interface MigrationControlSubject {
  control: MigrationControl;
  /** Starts a move of an application with one dataset from one node to another: the record as created (`pending`). */
  start(): Promise<Migration>;
  cleanup(): Promise<void>;
}

/** What a call ended with: `ok`, or the refusal's code and `detail.status`. */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'ok';
  } catch (err) {
    const e = err as { code?: string; detail?: { status?: unknown } };
    return `${e.code ?? 'NO_CODE'} ${String(e.detail?.status)}`;
  }
}

export function migrationControlContract(label: string, factory: () => Promise<MigrationControlSubject>): void {
  describe(`MigrationControl contract: ${label}`, () => {
    let subject: MigrationControlSubject;
    let control: MigrationControl;
    let m: Migration;
    beforeEach(async () => {
      subject = await factory();
      control = subject.control;
      m = await subject.start();
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    const step = (phase: MigrationPhase, node: 'source' | 'target' | string, fields: Partial<MigrationUpdate> = {}): MigrationUpdate => ({
      node_uuid: node === 'source' ? m.from : node === 'target' ? m.to : node,
      generation: m.generation,
      phase,
      ...fields,
    });
    const walk = async (...phases: MigrationPhase[]) => {
      for (const phase of phases) await control.update(m.id, step(phase, phase === 'release' || phase === 'done' ? 'target' : 'source'));
    };

    it('reads back a new migration as pending, with its generation and no progress', async () => {
      expect(m).toMatchObject({ phase: 'pending', round: 0, bytes_sent: 0, bytes_total: null, rate_bytes_per_second: null, error: null, cutover_started_at: null, cutover_ms: null });
      expect(m.from).not.toBe(m.to);
      expect(await control.get(m.id)).toEqual(m);
    });

    it('answers a legal step with the record after it, which a read then returns', async () => {
      const answer = await control.update(m.id, step('pre-copy', 'source', { round: 1, bytes_sent: 100, bytes_total: 1000, rate_bytes_per_second: 50 }));
      expect(answer).toMatchObject({ id: m.id, generation: m.generation, phase: 'pre-copy', round: 1, bytes_sent: 100, bytes_total: 1000, rate_bytes_per_second: 50 });
      expect(await control.get(m.id)).toEqual(answer);
    });

    it('walks pre-copy, cutover, handoff from the source and release, done from the target', async () => {
      const phases: string[] = [];
      for (const [phase, by] of [['pre-copy', 'source'], ['cutover', 'source'], ['handoff', 'source'], ['release', 'target'], ['done', 'target']] as const) {
        phases.push((await control.update(m.id, step(phase, by))).phase);
      }
      expect(phases).toEqual(['pre-copy', 'cutover', 'handoff', 'release', 'done']);
      const done = await control.get(m.id);
      expect(done.phase).toBe('done');
      expect(done.cutover_started_at).toEqual(expect.any(Number));
      expect(done.cutover_ms).toBeGreaterThanOrEqual(0);
    });

    it('takes a repeat of the current phase as progress: given fields change, omitted ones stay, null clears', async () => {
      await control.update(m.id, step('pre-copy', 'source', { round: 1, bytes_sent: 100, bytes_total: 1000, rate_bytes_per_second: 50, error: 'slow' }));
      expect(await control.update(m.id, step('pre-copy', 'source', { round: 2, bytes_sent: 900 }))).toMatchObject({ phase: 'pre-copy', round: 2, bytes_sent: 900, bytes_total: 1000, rate_bytes_per_second: 50, error: 'slow' });
      expect(await control.update(m.id, step('pre-copy', 'source', { rate_bytes_per_second: null, error: null }))).toMatchObject({ round: 2, bytes_sent: 900, rate_bytes_per_second: null, error: null });
    });

    it('accepts a retried step whose answer was lost, keeping the cutover start', async () => {
      await walk('pre-copy', 'cutover');
      const first = await control.get(m.id);
      expect(await control.update(m.id, step('cutover', 'source'))).toMatchObject({ phase: 'cutover', cutover_started_at: first.cutover_started_at });
      await walk('handoff');
      expect((await control.update(m.id, step('handoff', 'source'))).phase).toBe('handoff');
    });

    it('refuses a stale generation, older or newer, with 409 and changes nothing', async () => {
      await walk('pre-copy');
      const before = await control.get(m.id);
      expect(await outcome(control.update(m.id, step('cutover', 'source', { generation: m.generation - 1 })))).toBe('DROVER_MIGRATION_STALE_GENERATION 409');
      expect(await outcome(control.update(m.id, step('cutover', 'source', { generation: m.generation + 1 })))).toBe('DROVER_MIGRATION_STALE_GENERATION 409');
      expect(await control.get(m.id)).toEqual(before);
    });

    it('refuses a step from a node whose turn it is not with 409', async () => {
      expect(await outcome(control.update(m.id, step('pre-copy', 'target')))).toBe('DROVER_MIGRATION_WRONG_NODE 409');
      expect(await outcome(control.update(m.id, step('pre-copy', randomUUID())))).toBe('DROVER_MIGRATION_WRONG_NODE 409');
      await walk('pre-copy', 'cutover', 'handoff');
      expect(await outcome(control.update(m.id, step('release', 'source')))).toBe('DROVER_MIGRATION_WRONG_NODE 409');
      expect((await control.get(m.id)).phase).toBe('handoff');
    });

    it('refuses an illegal phase change with 409: skipping ahead, failing before pre-copy or after handoff, going back', async () => {
      expect(await outcome(control.update(m.id, step('handoff', 'source')))).toBe('DROVER_MIGRATION_BAD_TRANSITION 409');
      expect(await outcome(control.update(m.id, step('failed', 'source')))).toBe('DROVER_MIGRATION_BAD_TRANSITION 409');
      await walk('pre-copy', 'cutover');
      expect(await outcome(control.update(m.id, step('pre-copy', 'source')))).toBe('DROVER_MIGRATION_BAD_TRANSITION 409');
      await walk('handoff');
      expect(await outcome(control.update(m.id, step('failed', 'source')))).toBe('DROVER_MIGRATION_BAD_TRANSITION 409');
      expect((await control.get(m.id)).phase).toBe('handoff');
    });

    it('fails from cutover with the reason, then refuses every further step but a repeat of failed', async () => {
      await walk('pre-copy', 'cutover');
      expect(await control.update(m.id, step('failed', 'source', { error: 'transfer cut' }))).toMatchObject({ phase: 'failed', error: 'transfer cut' });
      expect(await outcome(control.update(m.id, step('pre-copy', 'source')))).toBe('DROVER_MIGRATION_BAD_TRANSITION 409');
      const failed = await control.get(m.id);
      expect(await control.update(m.id, step('failed', 'source', { error: 'again' }))).toEqual(failed);
    });

    it('answers a repeat of done with the record unchanged', async () => {
      await walk('pre-copy', 'cutover', 'handoff', 'release', 'done');
      const done = await control.get(m.id);
      expect(await control.update(m.id, step('done', 'target', { round: 99 }))).toEqual(done);
    });

    it('answers an unknown migration with 404, to a step and to a read', async () => {
      const unknown = randomUUID();
      expect(await outcome(control.update(unknown, { ...step('pre-copy', 'source') }))).toBe('DROVER_MIGRATION_NOT_FOUND 404');
      expect(await outcome(control.get(unknown))).toBe('DROVER_MIGRATION_NOT_FOUND 404');
    });

    it('reads a route version, and with no proxy waiting, acks it', async () => {
      const version = await control.routeVersion();
      expect(Number.isInteger(version) && version >= 0).toBe(true);
      expect(await control.routeAcks(version)).toEqual({ acked: true, waiting_for: [] });
    });
  });
}

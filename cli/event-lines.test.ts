import { describe, expect, it } from 'vitest';
import { eventLine, eventTime } from './event-lines.ts';

const AT = Date.UTC(2026, 11, 6, 16, 45, 1, 250);
const names: Record<string, string> = { 'aaaaaaaa-0000-4000-8000-000000000001': 'n1', 'aaaaaaaa-0000-4000-8000-000000000002': 'n2' };
const nameOf = (uuid: string) => names[uuid] ?? uuid.slice(0, 8);
const [N1, N2] = Object.keys(names) as [string, string];

describe('eventLine', () => {
  it('says which node went known, unknown or down, by its name', () => {
    expect(eventLine({ id: '1', type: 'node', data: { at: AT, uuid: N1, host: '127.0.0.11', state: 'down' } }, nameOf)).toBe('2026-12-06T16:45:01Z  node          n1 (127.0.0.11) is down');
  });

  it('tells a migration step with its progress, its end with bytes and cutover, a failure with its reason', () => {
    const base = { at: AT, application: 'redis', from: N1, to: N2, round: 2, bytes_sent: 3 * 1024 * 1024, cutover_ms: 310 };
    expect(eventLine({ id: '2', type: 'migration', data: { ...base, phase: 'pre-copy' } }, nameOf)).toContain('migration     redis n1 → n2: pre-copy, round 2, 3.0 MiB sent');
    expect(eventLine({ id: '3', type: 'migration', data: { ...base, phase: 'done' } }, nameOf)).toContain('redis n1 → n2: done, 3.0 MiB sent, cutover 310 ms');
    expect(eventLine({ id: '4', type: 'migration', data: { ...base, phase: 'failed', error: 'cancelled by the operator' } }, nameOf)).toContain(': failed: cancelled by the operator');
  });

  it('names a failover by its whole id, the one to grep the logs for, and says when it is ready and the copy kept aside', () => {
    const id = 'ffffffff-0000-4000-8000-00000000000f';
    const record = { at: AT, id, application: 'redis', from: N1, to: N2, phase: 'done', failover: { ready_at: null, diverged: [], rejoined: [] } };
    expect(eventLine({ id: '8', type: 'migration', data: record }, nameOf)).toContain(`redis n1 → n2: done (failover ${id})`);
    const later = { ...record, failover: { ready_at: AT, diverged: [{ name: 'x' }], rejoined: [] } };
    expect(eventLine({ id: '9', type: 'migration', data: later }, nameOf)).toContain(`(failover ${id}, ready, copy kept aside)`);
  });

  it('shows a replica with its lag and problem, a configuration change, and an unknown type as JSON', () => {
    expect(eventLine({ id: '5', type: 'replication', data: { at: AT, dataset_id: 'd0d0d0d0-1111', replica: N2, state: 'ok', lag_seconds: 3.4, problem: 'lag above 3× the interval' } }, nameOf)).toContain(
      'dataset d0d0d0d0 → n2: ok, 3 s behind — lag above 3× the interval',
    );
    expect(eventLine({ id: '6', type: 'configuration', data: { at: AT, version: 12, tag: 'abcdef0123456789' } }, nameOf)).toContain('configuration version 12 (tag abcdef012345)');
    expect(eventLine({ id: '7', type: 'future', data: { at: AT, x: 1 } }, nameOf)).toBe('2026-12-06T16:45:01Z  future        {"x":1}');
  });

  it('prints no time it was not given', () => {
    expect(eventTime(undefined)).toBe('-');
  });
});

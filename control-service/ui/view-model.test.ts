import { describe, expect, it } from 'vitest';
import { MIGRATION_PHASES } from '#common/migration-protocol.ts';
import type { Migration } from '#common/model.ts';
import {
  applicationRows,
  cancellable,
  confirmation,
  datasetRows,
  eventLine,
  formatBytes,
  formatDuration,
  moveTargets,
  nodeRows,
  progressOf,
  recordSteps,
  timeline,
} from './browser/view-model.js';

const N1 = '00000001-0000-4000-8000-000000000001';
const N2 = '00000001-0000-4000-8000-000000000002';
const N3 = '00000001-0000-4000-8000-000000000003';
const T = 1_800_000_000_000;
const node = (uuid: string, name: string, extra: Record<string, unknown> = {}) => ({ uuid, host: `127.0.0.1${name.slice(1)}`, state: 'known', labels: { name }, last_seen: T - 1500, ...extra });
const NODES = [node(N2, 'n2'), node(N1, 'n1'), node(N3, 'n3', { state: 'unknown', last_seen: null })];

function migration(extra: Partial<Migration> = {}): Migration {
  return { id: '0000000f-0000-4000-8000-000000000001', application: 'redis', dataset_ids: [], from: N1, to: N2, phase: 'pre-copy', generation: 1, round: 2, bytes_sent: 33 * 1024 * 1024, bytes_total: 66 * 1024 * 1024, rate_bytes_per_second: 7782, started_at: T, updated_at: T + 4000, cutover_started_at: null, cutover_ms: null, error: null, ...extra };
}

const app = (extra: Record<string, unknown> = {}) => ({ name: 'redis', project: 'kv', image: 'drover/redis', node_uuid: N1, state: 'running', health: 'healthy', migration: null, replicas: [], unschedulable_reason: null, ...extra });

describe('the dashboard view model', () => {
  it('shows each node by its name label with its state, how long ago it reported, its labels and its applications', () => {
    const rows = nodeRows(NODES, [app(), app({ name: 'web', node_uuid: N1 })], T);
    expect(rows.map((r) => [r.name, r.state, r.lastSeen, r.labels, r.applications, r.scheduling])).toEqual([
      ['n1', 'known', '1.5 s ago', 'name=n1', ['redis', 'web'], 'schedulable'],
      ['n2', 'known', '1.5 s ago', 'name=n2', [], 'schedulable'],
      ['n3', 'unknown', 'never', 'name=n3', [], 'schedulable'],
    ]);
  });

  it('shows an application with its node, health, declared ports and each replica with its lag', () => {
    const configs = [{ name: 'redis', ports: [{ internal: 6379, external: 16600 }, { internal: 53, external: 5353, protocol: 'udp' }] }];
    const [row] = applicationRows([app({ replicas: [{ node: N2, lag_seconds: 1.25, state: 'ok' }] })], configs, NODES);
    expect(row).toMatchObject({ name: 'redis', node: 'n1', health: 'healthy', ports: '16600→6379, 5353→53/udp', replicas: ['n2 ok, lag 1.3 s'], moving: false, targets: [{ uuid: N2, name: 'n2' }] });
  });

  it('offers as move targets only other nodes that report and are not cordoned', () => {
    const nodes = [...NODES, node('00000001-0000-4000-8000-000000000004', 'n4', { cordoned: true })];
    expect(moveTargets({ node_uuid: N2 }, nodes)).toEqual([{ uuid: N1, name: 'n1' }]);
  });

  it('shows a dataset with its primary, replicas, size on the primary out of its limit, and its snapshots', () => {
    const [row] = datasetRows(
      [{ dataset_id: '0000000d-0000-4000-8000-000000000001', name: 'kv_data', primary: N1, maximum_size: 512 * 1024 * 1024, replicas: [N2], applications: ['redis'], copies: [{ node_uuid: N1, writable: true, used_bytes: 33 * 1024 * 1024, snapshots: 4, newest_snapshot: 'pool/drover/x@drover-9' }] }],
      NODES,
    );
    expect(row).toMatchObject({ name: 'kv_data', primary: 'n1', replicas: 'n2', size: '33.0 MiB of 512.0 MiB', snapshots: '4 (newest drover-9)' });
  });

  it('fills the progress bar with the share of the round sent and says round, bytes, rate and the cutover pause', () => {
    expect(progressOf(migration())).toEqual({ percent: 50, label: 'round 2 · 33.0 MiB / 66.0 MiB · 7.6 KiB/s' });
    expect(progressOf(migration({ phase: 'done', bytes_sent: 1, bytes_total: 10, cutover_ms: 412 }))).toEqual({ percent: 100, label: 'round 2 · 1 B / 10 B · cutover pause 412 ms' });
    expect(progressOf(migration({ bytes_sent: 500, bytes_total: null, rate_bytes_per_second: null })).percent).toBe(0);
  });

  it('builds the phase timeline from the steps seen, with how long each finished phase took', () => {
    let steps = recordSteps([], migration({ phase: 'pre-copy', updated_at: T + 1000 }));
    steps = recordSteps(steps, migration({ phase: 'cutover', cutover_started_at: T + 9000, updated_at: T + 9000 }));
    const m = migration({ phase: 'handoff', cutover_started_at: T + 9000, updated_at: T + 9400 });
    steps = recordSteps(steps, m);
    expect(timeline(MIGRATION_PHASES, steps, m)).toEqual([
      { phase: 'pending', status: 'done', took: '1.0 s' },
      { phase: 'pre-copy', status: 'done', took: '8.0 s' },
      { phase: 'cutover', status: 'done', took: '400 ms' },
      { phase: 'handoff', status: 'current', took: null },
      { phase: 'release', status: 'todo', took: null },
      { phase: 'done', status: 'todo', took: null },
    ]);
  });

  it('ends the timeline of a failed move at failed, after the phases it reached', () => {
    const m = migration({ phase: 'failed', updated_at: T + 3000, error: 'cancelled by the operator' });
    const steps = recordSteps(recordSteps([], migration({ phase: 'pre-copy', updated_at: T + 1000 })), m);
    expect(timeline(MIGRATION_PHASES, steps, m).map((s) => [s.phase, s.status])).toEqual([['pending', 'done'], ['pre-copy', 'done'], ['failed', 'done']]);
  });

  it('offers cancel only before handoff, as the API allows', () => {
    expect(['pending', 'pre-copy', 'cutover', 'handoff', 'release', 'done', 'failed'].filter((phase) => cancellable(migration({ phase: phase as Migration['phase'] })))).toEqual(['pending', 'pre-copy', 'cutover']);
  });

  it('asks a question naming what an operation does, and sends it to the existing route', () => {
    expect(confirmation({ kind: 'move', app: 'redis', from: 'n1', to: 'n2', toUuid: N2 })).toEqual({
      question: 'Move redis from n1 to n2? Its data goes with it; its clients pause during the cutover.',
      method: 'POST',
      path: '/v1/drover/applications/redis/move',
      body: { node_uuid: N2 },
    });
    expect(confirmation({ kind: 'drain', node: 'n1', uuid: N1 })).toMatchObject({ path: `/v1/drover/nodes/${N1}/drain`, body: null });
    expect(confirmation({ kind: 'cancel', id: 'm1', app: 'redis' })).toMatchObject({ path: '/v1/drover/migrations/m1/cancel', question: expect.stringContaining('Cancel the move of redis') });
  });

  it('writes one line per event, telling a failover from a move', () => {
    expect(eventLine('migration', migration({ phase: 'cutover' }), NODES)).toBe('move redis n1 → n2: cutover');
    expect(eventLine('migration', migration({ phase: 'done', failover: { failed_silent_ms: 12000, snapshots: [], snapshot_age_seconds: 3, data_window_seconds: 2, ready_at: null, diverged: [], rejoined: [] } }), NODES)).toBe('failover: redis from n1 to n2 (data window 2 s)');
    expect(eventLine('node', { uuid: N3, host: '127.0.0.13', state: 'down' }, NODES)).toBe('node 127.0.0.13 is down');
  });

  it('formats bytes in binary units and durations from milliseconds to hours', () => {
    expect([formatBytes(0), formatBytes(1536), formatBytes(null)]).toEqual(['0 B', '1.5 KiB', '—']);
    expect([formatDuration(412), formatDuration(4200), formatDuration(185_000), formatDuration(7_800_000)]).toEqual(['412 ms', '4.2 s', '3 min 5 s', '2 h 10 min']);
  });
});

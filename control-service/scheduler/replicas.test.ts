import { describe, expect, it } from 'vitest';
import type { Application, Dataset, Desired, Node, ReplicationPolicy } from '#common/model.ts';
import { applyReplicas } from '../desired/replication.ts';
import { validateDesired } from '../store/validate.ts';
import { chooseReplicas, type ReplicaInput } from './replicas.ts';

const n = (i: number) => `00000001-0000-4000-8000-${String(i).padStart(12, '0')}`;
const D = '0000000d-0000-4000-8000-000000000001';
const node = (i: number, labels: Record<string, string> = {}): Node => ({ uuid: n(i), host: `127.0.0.${10 + i}`, labels, transfer: {} });
const policy = (replicas: number): ReplicationPolicy => ({ replicas, interval_seconds: 10, retention: { primary: '1x1m', replicas: '1x1m' } });
const dataset = (primary: number, replicas: number[] = [], wanted = 2, extra: Partial<Dataset> = {}): Dataset =>
  ({ dataset_id: D, primary: n(primary), maximum_size: null, metadata: {}, deleted: false, replication: policy(wanted), replicas: replicas.map(n), ...extra }) as Dataset;

function doc(nodes: Node[], datasets: Dataset[], applications: Partial<Application>[] = []): Desired {
  return validateDesired({ nodes, datasets, applications, leases: [], migrations: [] });
}

function choose(desired: Desired, extra: Partial<ReplicaInput> & { upIds?: number[] } = {}) {
  const up = new Set((extra.upIds ?? desired.nodes.map((_, i) => i + 1)).map(n));
  const choices = chooseReplicas({ desired, up, silentForMs: () => 0, replaceAfterMs: 300_000, holding: () => [], ...extra });
  return choices.get(D) ?? null;
}

describe('chooseReplicas', () => {
  it('never chooses the primary and spreads over the nodes holding the fewest replicas', () => {
    const other = { ...dataset(3, [2], 1), dataset_id: '0000000d-0000-4000-8000-000000000002' };
    const desired = doc([node(1), node(2), node(3), node(4)], [dataset(1), other]);
    expect(choose(desired)).toEqual({ replicas: [n(3), n(4)], problem: null });
  });

  it('prefers nodes that already hold a copy, then an unused zone', () => {
    const nodes = [node(1, { zone: 'a' }), node(2, { zone: 'a' }), node(3, { zone: 'b' }), node(4, { zone: 'b' }), node(5, { zone: 'c' })];
    expect(choose(doc(nodes, [dataset(1)]))).toEqual({ replicas: [n(3), n(5)], problem: null });
    expect(choose(doc(nodes, [dataset(1)]), { holding: () => [n(4), n(1)] })).toEqual({ replicas: [n(4), n(5)], problem: null });
  });

  it("honours the constraints of the application that mounts the dataset, so a replica could become primary", () => {
    const nodes = [node(1, { disk: 'ssd' }), node(2), node(3, { disk: 'ssd' })];
    const app = { name: 'db', image: 'redis', node_uuid: n(1), volumes: [{ dataset_id: D, mountpoint: '/data' }], placement: { constraints: ['node.labels.disk == ssd'], affinity: [], anti_affinity: [], strategy: 'spread' as const } };
    const choice = choose(doc(nodes, [dataset(1)], [app]));
    expect(choice?.replicas).toEqual([n(3)]);
    expect(choice?.problem).toBe('1 of 2 replicas placed: 2 nodes up besides the primary; fails "node.labels.disk == ssd" (1 node)');
  });

  it('keeps a silent replica until it has been silent for longer than the set time, then replaces it', () => {
    const desired = doc([node(1), node(2), node(3)], [dataset(1, [2], 1)]);
    expect(choose(desired, { upIds: [1, 3], silentForMs: () => 299_000 })).toEqual({ replicas: [n(2)], problem: null });
    expect(choose(desired, { upIds: [1, 3], silentForMs: () => 301_000 })).toEqual({ replicas: [n(3)], problem: null });
  });

  it('keeps a lapsed replica when no other node fits, and says why', () => {
    const desired = doc([node(1), node(2)], [dataset(1, [2], 1)]);
    expect(choose(desired, { upIds: [1], silentForMs: () => 400_000 })).toEqual({
      replicas: [n(2)],
      problem: `replica node ${n(2)} silent for more than 300s and no other node fits`,
    });
  });

  it('uses a returning node again only while a replica is still wanted', () => {
    // Replaced by node 3 while it was away: not wanted any more, so it stays out.
    const replaced = doc([node(1), node(2), node(3)], [dataset(1, [3], 1)]);
    expect(choose(replaced, { holding: () => [n(2)] })).toEqual({ replicas: [n(3)], problem: null });
    // Still wanted (two asked for): chosen again, first, because it holds a copy.
    const wanting = doc([node(1), node(2), node(3), node(4)], [dataset(1, [3], 2)]);
    expect(choose(wanting, { holding: () => [n(2)] })?.replicas).toEqual([n(3), n(2)]);
  });

  it('drops the new primary after a handoff and prefers the old one, which has the data', () => {
    const desired = doc([node(1), node(2), node(3)], [dataset(2, [2, 3], 2)]);
    expect(choose(desired, { holding: () => [n(1), n(2), n(3)] })).toEqual({ replicas: [n(3), n(1)], problem: null });
  });

  it('places what it can when too few nodes exist, naming why', () => {
    const desired = doc([node(1), node(2)], [dataset(1, [], 3)]);
    expect(choose(desired)).toEqual({ replicas: [n(2)], problem: '1 of 3 replicas placed: 1 node up besides the primary' });
  });

  it('releases every replica when the policy stops or asks for fewer', () => {
    expect(choose(doc([node(1), node(2), node(3)], [dataset(1, [2, 3], 1)]))).toEqual({ replicas: [n(2)], problem: null });
    expect(choose(doc([node(1), node(2), node(3)], [dataset(1, [2, 3], 2, { replication: null })]))).toEqual({ replicas: [], problem: null });
  });

  it('writes only datasets whose replicas change, and leaves the document alone otherwise', () => {
    const desired = doc([node(1), node(2), node(3)], [dataset(1, [2, 3], 2)]);
    const choices = chooseReplicas({ desired, up: new Set([n(1), n(2), n(3)]), silentForMs: () => 0, replaceAfterMs: 1, holding: () => [] });
    expect(applyReplicas(desired, choices)).toBe(desired);
  });
});

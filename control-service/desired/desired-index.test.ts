import { describe, expect, it } from 'vitest';
import { externalKey, type Desired } from '#common/model.ts';
import { validateDesired } from '../store/validate.ts';
import { checkInvariants } from './invariants.ts';
import { indexOf } from './desired-index.ts';

const uuid = (p: string, i: number) => `${p}-0000-4000-8000-${String(i).padStart(12, '0')}`;
const node = (i: number) => uuid('00000001', i);
const ds = (i: number) => uuid('0000000d', i);

function doc(n: number): Desired {
  return validateDesired({
    nodes: Array.from({ length: 4 }, (_, i) => ({ uuid: node(i), host: `127.0.0.${i + 1}`, labels: {}, transfer: {} })),
    datasets: Array.from({ length: n }, (_, i) => ({ dataset_id: ds(i), primary: node(i % 4) })),
    applications: Array.from({ length: n }, (_, i) => ({ name: `app${i}`, node_uuid: node(i % 4), image: 'x', ports: [{ internal: 80, external: 10000 + i }], volumes: [{ dataset_id: ds(i), mountpoint: '/d' }] })),
    leases: [],
    migrations: [],
  });
}

/** A handoff: application i and its dataset now on `to` (entries replaced in place). */
function handoff(d: Desired, i: number, to: string): Desired {
  return validateDesired({
    ...d,
    applications: d.applications.map((a, k) => (k === i ? { ...a, node_uuid: to } : a)),
    datasets: d.datasets.map((x, k) => (k === i ? { ...x, primary: to } : x)),
  });
}

/** Entries by key (the order of keys is no part of a map's meaning; the order inside a group is). */
const plain = (m: Map<unknown, unknown>) => JSON.parse(JSON.stringify(Object.fromEntries(m.entries())));

/** The maps as they must be, built here from the lists (not through the index's caches). */
function expected(d: Desired): Record<string, Map<unknown, unknown>> {
  const group = <T>(list: readonly T[], by: (x: T) => string | undefined) => {
    const m = new Map<string, T[]>();
    for (const x of list) {
      const k = by(x);
      if (k !== undefined) m.set(k, [...(m.get(k) ?? []), x]);
    }
    return m;
  };
  return {
    applications: new Map(d.applications.map((a) => [a.name, a])),
    datasets: new Map(d.datasets.map((x) => [x.dataset_id, x])),
    applicationByDataset: new Map(d.applications.flatMap((a) => a.volumes.map((v) => [v.dataset_id, a] as const))),
    applicationByExternalPort: new Map(d.applications.flatMap((a) => a.ports.map((p) => [externalKey(p), a] as const))),
    applicationsByNode: group(d.applications, (a) => a.node_uuid),
    datasetsByPrimary: group(d.datasets, (x) => x.primary),
    applicationPositions: new Map(d.applications.map((a, i) => [a.name, i])),
    datasetPositions: new Map(d.datasets.map((x, i) => [x.dataset_id, i])),
  };
}

describe('the desired index', () => {
  it('updated for entries replaced in place equals one built from scratch, also after many updates', () => {
    let d = doc(200);
    for (let step = 0; step < 40; step++) {
      // Every map of this version, so the next version's are updates of these.
      const got = indexOf(d) as unknown as Record<string, Map<unknown, unknown>>;
      for (const [key, want] of Object.entries(expected(d))) expect(plain(got[key]!), `${key} at step ${step}`).toEqual(plain(want));
      expect(indexOf(d).applications.get('app7')).toBe(d.applications[7]);
      expect(indexOf(d).applications.size).toBe(200);
      expect([...indexOf(d).datasets.values()]).toEqual(d.datasets);
      d = handoff(d, (step * 7) % 200, node((step + 1) % 4));
    }
  });

  it('keeps the previous document\'s maps as they were', () => {
    const before = doc(10);
    const old = indexOf(before).datasets.get(ds(3))!.primary;
    const after = handoff(before, 3, node(9));
    expect(indexOf(after).datasets.get(ds(3))!.primary).toBe(node(9));
    expect(indexOf(before).datasets.get(ds(3))!.primary).toBe(old);
    expect(indexOf(before).applicationsByNode.get(node(9))).toBeUndefined();
    expect(indexOf(after).applicationsByNode.get(node(9))!.map((a) => a.name)).toEqual(['app3']);
  });
});

describe('the cross-entry rules', () => {
  it('find a volume made to name a deleted dataset after a handoff reused the last result', () => {
    let d = doc(20);
    expect(checkInvariants(d)).toEqual([]);
    d = handoff(d, 4, node(2));
    expect(checkInvariants(d)).toEqual([]);
    const broken = validateDesired({ ...d, datasets: d.datasets.map((x, k) => (k === 5 ? { ...x, deleted: true } : x)) });
    expect(checkInvariants(broken).map((i) => i.path.join('.'))).toEqual(['applications.5.volumes.0.dataset_id']);
    const sharing = validateDesired({ ...d, applications: d.applications.map((a, k) => (k === 6 ? { ...a, volumes: [{ dataset_id: ds(7), mountpoint: '/d' }] } : a)) });
    expect(checkInvariants(sharing).map((i) => i.message)).toEqual([`dataset ${ds(7)} is already used by application "app6"`]);
  });
});

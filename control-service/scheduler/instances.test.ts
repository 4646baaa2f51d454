import { describe, expect, it } from 'vitest';
import type { Application, Desired, Instance, Node } from '#common/model.ts';
import { carryInstances, instanceApplication } from '../desired/instances.ts';
import { checkInvariants } from '../desired/invariants.ts';
import { validateDesired } from '../store/validate.ts';
import { planInstances, type InstanceInput } from './instances.ts';

const n = (i: number) => `00000001-0000-4000-8000-${String(i).padStart(12, '0')}`;
const node = (i: number, labels: Record<string, string> = {}): Node => ({ uuid: n(i), host: `127.0.0.${10 + i}`, labels, transfer: {} });
const app = (extra: Partial<Application> = {}): Application =>
  ({ name: 'web', image: 'registry.example/httpd:1', environment: {}, ports: [], volumes: [], links: [], restart_policy: { name: 'never' }, labels: {}, ...extra }) as Application;
const doc = (nodes: Node[], applications: Application[]): Desired => validateDesired({ nodes, applications, datasets: [], leases: [], migrations: [] });

/**
 * A fake world: every placed instance becomes ready at once (unless `stuck`), every draining
 * one is drained at once; the planner runs until it changes nothing (at most `passes`).
 */
function converge(desired: Desired, world: Partial<InstanceInput> & { stuck?: (i: Instance) => boolean } = {}, passes = 12): { desired: Desired; passes: number; unschedulable: Map<string, string> } {
  let now = world.now ?? 1_000_000;
  for (let pass = 1; pass <= passes; pass++) {
    const out = planInstances({
      desired,
      up: world.up ?? new Set(desired.nodes.map((x) => x.uuid)),
      gone: world.gone ?? (() => false),
      now,
      ready: (_a, i) => !(world.stuck?.(i) ?? false),
      drained: world.drained ?? (() => true),
      seed: 1,
    });
    if (out.desired === desired) return { desired, passes: pass, unschedulable: out.unschedulable };
    desired = validateDesired(out.desired);
    now += 1_000;
  }
  throw new Error(`not converged within ${passes} passes`);
}
const live = (d: Desired) => (d.applications[0]!.placed ?? []).filter((i) => i.draining_since === undefined);
const nodesOf = (d: Desired) => live(d).map((i) => i.node_uuid);

describe('placing several instances', () => {
  it('spreads three instances over three nodes, within 2 passes', () => {
    const out = converge(doc([node(1), node(2), node(3)], [app({ instances: 3 })]));
    expect(new Set(nodesOf(out.desired)).size).toBe(3);
    expect(out.passes).toBeLessThanOrEqual(2);
  });

  it('scales 3 → 5 → 2, removing the newest first after draining them', () => {
    let d = converge(doc([node(1), node(2), node(3)], [app({ instances: 3 })])).desired;
    d = converge(validateDesired({ ...d, applications: [{ ...d.applications[0]!, instances: 5 }] })).desired;
    expect(live(d).map((i) => i.id)).toEqual([1, 2, 3, 4, 5]);
    const scaledDown = validateDesired({ ...d, applications: [{ ...d.applications[0]!, instances: 2 }] });
    // Not drained yet: the three newest are draining, still placed.
    const draining = converge(scaledDown, { drained: () => false }).desired;
    expect(draining.applications[0]!.placed!.filter((i) => i.draining_since !== undefined).map((i) => i.id)).toEqual([3, 4, 5]);
    expect(live(converge(draining).desired).map((i) => i.id)).toEqual([1, 2]);
    expect(converge(draining).desired.applications[0]!.placed).toHaveLength(2);
  });

  it('keeps one instance per node on anti-affinity with itself, and says why the rest wait', () => {
    const rules = { constraints: [], affinity: [], anti_affinity: ['web'], strategy: 'spread' as const };
    const out = converge(doc([node(1), node(2)], [app({ instances: 3, placement: rules })]));
    expect(new Set(nodesOf(out.desired)).size).toBe(2);
    expect(out.unschedulable.get('web')).toMatch(/2 of 3 instances placed: an instance runs there \(anti-affinity "web"\) \(2 nodes\)/);
  });

  it('honours constraints, and drains an instance whose node stops matching', () => {
    const rules = { constraints: ['node.labels.tier == web'], affinity: [], anti_affinity: [], strategy: 'spread' as const };
    const d = converge(doc([node(1, { tier: 'web' }), node(2), node(3, { tier: 'web' })], [app({ instances: 2, placement: rules })])).desired;
    expect(nodesOf(d).sort()).toEqual([n(1), n(3)]);
    const relabelled = converge(validateDesired({ ...d, nodes: [node(1, { tier: 'web' }), node(2, { tier: 'web' }), node(3)] })).desired;
    expect(nodesOf(relabelled).sort()).toEqual([n(1), n(2)]);
  });

  it('replaces an instance whose node is gone elsewhere', () => {
    const d = converge(doc([node(1), node(2), node(3)], [app({ instances: 2 })])).desired;
    const lost = nodesOf(d)[0]!;
    const out = converge(d, { gone: (x) => x === lost, up: new Set([n(1), n(2), n(3)].filter((x) => x !== lost)) }).desired;
    expect(live(out)).toHaveLength(2);
    expect(nodesOf(out)).not.toContain(lost);
  });
});

describe('global applications', () => {
  it('runs one instance per matching node, on a node that joins later too, and leaves a cordoned one alone', () => {
    let d = converge(doc([node(1), node(2)], [app({ mode: 'global' })])).desired;
    expect(nodesOf(d).sort()).toEqual([n(1), n(2)]);
    d = converge(validateDesired({ ...d, nodes: [...d.nodes, node(3)] })).desired;
    expect(nodesOf(d).sort()).toEqual([n(1), n(2), n(3)]);
    d = converge(validateDesired({ ...d, nodes: [node(1), node(2), { ...node(4), cordon: { since: 1, drain: false } }, node(3)] })).desired;
    expect(nodesOf(d)).toHaveLength(3);
  });
});

describe('rolling updates', () => {
  const update = (d: Desired, extra: Partial<Application>) => validateDesired(carryInstances(d, { ...d, applications: [{ ...d.applications[0]!, placed: undefined, ...extra } as Application] }));

  it('replaces instances one at a time, start-first, each new one ready before an old one drains', () => {
    const d = converge(doc([node(1), node(2), node(3)], [app({ instances: 3, update_config: { parallelism: 1, delay_seconds: 0, order: 'start-first', failure_action: 'pause', monitor_seconds: 60 } })])).desired;
    let u = update(d, { environment: { VERSION: '2' } });
    expect(u.applications[0]!.revision).toBe(1);
    expect(u.applications[0]!.rollout?.state).toBe('updating');
    let most = 0;
    for (let pass = 0; pass < 20 && u.applications[0]!.rollout !== undefined; pass++) {
      u = validateDesired(planInstances({ desired: u, up: new Set([n(1), n(2), n(3)]), gone: () => false, now: 2_000_000 + pass * 1000, ready: () => true, drained: () => true, seed: 1 }).desired);
      most = Math.max(most, live(u).length);
      expect(live(u).length).toBeGreaterThanOrEqual(3);
    }
    expect(most).toBe(4);
    expect(live(u).every((i) => i.revision === 1)).toBe(true);
    expect(u.applications[0]!.revisions).toBeUndefined();
    expect(instanceApplication(u.applications[0]!, live(u)[0]!).environment).toEqual({ VERSION: '2' });
  });

  it('pauses a rollout whose new instance is not ready within monitor_seconds, or rolls it back', () => {
    const base = (failure_action: 'pause' | 'rollback') => converge(doc([node(1), node(2)], [app({ instances: 2, update_config: { parallelism: 1, delay_seconds: 0, order: 'stop-first', failure_action, monitor_seconds: 5 } })])).desired;
    const stuck = (i: Instance) => i.revision === 1;
    // The first batch is placed and never ready; 20 s later the monitor has run out.
    const later = (d: Desired) => converge(converge(d, { stuck, now: 5_000_000 }).desired, { stuck, now: 5_020_000 }, 20).desired;
    const paused = later(update(base('pause'), { image: 'registry.example/httpd:broken' }));
    expect(paused.applications[0]!.rollout).toMatchObject({ state: 'paused', reason: expect.stringMatching(/not ready within 5 s/) });
    const back = later(update(base('rollback'), { image: 'registry.example/httpd:broken' }));
    expect(back.applications[0]!.image).toBe('registry.example/httpd:1');
    expect(back.applications[0]!.rollout?.state).toBe('rolled-back');
    expect(live(back).every((i) => i.revision === 0)).toBe(true);
  });

  it('keeps instances and revision across a write that does not give them', () => {
    const d = converge(doc([node(1), node(2)], [app({ instances: 2 })])).desired;
    const same = update(d, {});
    expect(same.applications[0]!.placed).toEqual(d.applications[0]!.placed);
    expect(same.applications[0]!.rollout).toBeUndefined();
  });
});

describe('the rules of several instances', () => {
  it('refuses several instances of an application with a dataset, naming the field', () => {
    const dataset = { dataset_id: '0000000d-0000-4000-8000-000000000001', primary: n(1) };
    const d = validateDesired({ nodes: [node(1)], datasets: [dataset], applications: [app({ instances: 2, volumes: [{ dataset_id: dataset.dataset_id, mountpoint: '/data' }] })], leases: [], migrations: [] });
    expect(checkInvariants(d)).toContainEqual({ path: ['applications', 0, 'instances'], message: expect.stringMatching(/an application with a dataset runs as one instance/) });
  });
});

import { describe, expect, it } from 'vitest';
import { ADDRESS_A, app, desired, localContainer, NODE_A } from '../testing/fixtures.ts';
import { buildReport } from '../report.ts';
import { containerSpec } from './container-spec.ts';
import { corrOf, correlations } from './correlation.ts';
import { plan } from './plan.ts';
import type { LocalObserved } from './types.ts';

// A single application's update (docs/DESIGN.md §30): the agent stops the old container only
// once the control service recorded that every proxy holds its connections, and says when its
// container runs the update's spec.
const ctx = { nodeUuid: NODE_A, address: ADDRESS_A, now: 1_000_000 };
const UPDATE = '0000000b-0000-4000-8000-000000000001';
const v1 = app('cache', { node_uuid: NODE_A, environment: { VERSION: 'v1' }, ports: [{ internal: 6379, external: 16379 }] });
const v2 = (heldAt: number | null) => ({ ...v1, environment: { VERSION: 'v2' }, update_hold: { id: UPDATE, started_at: 1, held_at: heldAt } });
const hashOf = (a: typeof v1) => containerSpec(a, { nodeUuid: NODE_A, address: ADDRESS_A, generation: 0, mountpoints: new Map() }).configHash;
const observed = (configHash: string): LocalObserved => ({
  datasets: [],
  snapshots: {},
  containers: [localContainer('cache', { configHash, running: true, startedAt: 1, generation: 0 })],
});

describe('a single application\'s update on its agent', () => {
  it('keeps the old container running until the hold is in place, then stops it, the update\'s id as the correlation id', () => {
    const waiting = plan(desired({ applications: [v2(null)] }), observed(hashOf(v1)), ctx);
    expect(waiting.changes).toEqual([]);
    expect(waiting.blocked).toEqual([{ subject: 'container:drover-cache', reason: `configuration changed: waiting for every proxy to hold its connections before stopping it (update ${UPDATE})` }]);
    expect(waiting.updates).toBeUndefined();

    const view = desired({ applications: [v2(5)] });
    const held = plan(view, observed(hashOf(v1)), ctx);
    expect(held.changes).toMatchObject([{ kind: 'stop-container', name: 'drover-cache', reason: 'configuration changed' }]);
    expect(corrOf(held.changes[0]!, correlations(view, NODE_A))).toBe(UPDATE);
  });

  it('stops at once when there is no hold (an application the proxies do not serve)', () => {
    const { update_hold: _h, ...plain } = v2(null);
    expect(plan(desired({ applications: [plain] }), observed(hashOf(v1)), ctx).changes).toMatchObject([{ kind: 'stop-container' }]);
    // A released hold (kept in the configuration for its id) holds nothing either.
    const released = { ...v2(null), update_hold: { ...v2(null).update_hold, released_at: 2, ended: 'deadline' as const } };
    const result = plan(desired({ applications: [released] }), observed(hashOf(v1)), ctx);
    expect(result.changes).toMatchObject([{ kind: 'stop-container' }]);
    expect(corrOf(result.changes[0]!, correlations(desired({ applications: [released] }), NODE_A))).toBeNull();
  });

  it('reports a container that runs the update\'s spec as that update\'s, whether it was replaced or did not need to be', () => {
    const view = desired({ applications: [v2(5)] });
    const replaced = observed(hashOf(v2(5)));
    const result = plan(view, replaced, ctx);
    expect(result.changes).toEqual([]);
    expect(result.updates).toEqual(new Map([['cache', UPDATE]]));
    const report = buildReport({ uuid: NODE_A, address: ADDRESS_A, era: 'e', labels: {}, transfer: {} }, replaced, [], undefined, result.updates);
    expect(report!.containers[0]).toMatchObject({ name: 'cache', running: true, update: UPDATE });
    // The old container, before the view changed: no update in the report.
    expect(buildReport({ uuid: NODE_A, address: ADDRESS_A, era: 'e', labels: {}, transfer: {} }, observed(hashOf(v1)), [])!.containers[0]!.update).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import type { KeptCopyAnswer, ReplicationAnswer } from '#common/api.ts';
import { ReplicationWatch } from './replication-status.ts';

const DS = 'aaaaaaaa-0000-4000-8000-000000000001';
const N1 = '11111111-1111-4111-8111-111111111111';
const N2 = '22222222-2222-4222-8222-222222222222';

function answer(kept: KeptCopyAnswer[]): ReplicationAnswer {
  return {
    dataset_id: DS,
    application: 'web',
    primary: N1,
    policy: { replicas: 1, interval_seconds: 2, retention: { primary: '1x1m(keep=all)', replicas: '1x1m(keep=all)' } },
    replicas: [],
    problem: null,
    kept,
  };
}

const copy = (generation: number): KeptCopyAnswer => ({ node: N2, name: `tank/drover-diverged/${DS}-g${generation}`, generation, used_bytes: 1024 });

describe('ReplicationWatch', () => {
  it('announces a copy newly kept aside once, naming where it is, but not the copies kept before it started', () => {
    const watch = new ReplicationWatch();
    expect(watch.changes([answer([copy(3)])])).toEqual([]);
    expect(watch.changes([answer([copy(3), copy(7)])])).toEqual([
      { dataset_id: DS, replica: N2, state: 'diverged', lag_seconds: null, problem: `diverged copy set aside as tank/drover-diverged/${DS}-g7 (drover never destroys it)`, kept: `tank/drover-diverged/${DS}-g7` },
    ]);
    expect(watch.changes([answer([copy(3), copy(7)])])).toEqual([]);
    // A node whose report is briefly missing does not make its copies news again.
    expect(watch.changes([answer([])])).toEqual([]);
    expect(watch.changes([answer([copy(3), copy(7)])])).toEqual([]);
  });
});

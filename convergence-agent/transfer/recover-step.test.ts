import { describe, expect, it } from 'vitest';
import type { ZfsStore } from '../zfs/zfs.ts';
import { settleHolds } from './recover-step.ts';
import type { PeerStep, StepHoldTags } from './types.ts';

const TAGS: StepHoldTags = { source: { base: 'drover-base-aaaaaaaa', step: 'drover-step-aaaaaaaa' }, target: { base: 'drover-base', step: 'drover-step' } };

/** Both sides' holds as zfs would keep them, with every command left pending until the test lets it land. */
function sides() {
  const held = { source: new Map<string, Set<string>>(), target: new Map<string, Set<string>>() };
  const pending: Array<{ what: string; land: () => void }> = [];
  const command = (side: 'source' | 'target', verb: 'hold' | 'release', snapshot: string, tag: string): Promise<void> =>
    new Promise((resolve) => {
      pending.push({
        what: `${side} ${verb} ${snapshot} ${tag}`,
        land: () => {
          const tags = held[side].get(snapshot) ?? new Set();
          if (verb === 'hold') tags.add(tag);
          else tags.delete(tag);
          held[side].set(snapshot, tags);
          resolve();
        },
      });
    });
  const store = {
    hold: (_: string, snapshot: string, tag: string) => command('source', 'hold', snapshot, tag),
    release: (_: string, snapshot: string, tag: string) => command('source', 'release', snapshot, tag),
  } as unknown as ZfsStore;
  const step = {
    hold: (snapshot: string, tag: string) => command('target', 'hold', snapshot, tag),
    release: (snapshot: string, tag: string) => command('target', 'release', snapshot, tag),
  } as unknown as PeerStep;
  for (const side of ['source', 'target'] as const) held[side].set('s1', new Set([side === 'source' ? TAGS.source.base : TAGS.target.base]));
  return { held, pending, store, step };
}

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

describe('settleHolds', () => {
  it('holds the new base before it lets the old one go, on each side', async () => {
    const w = sides();
    const done = settleHolds(w.store, w.step, 'ds', 's2', 's1', TAGS, false);
    await flush();
    expect(w.pending.map((p) => p.what).sort()).toEqual(['source hold s2 drover-base-aaaaaaaa', 'target hold s2 drover-base']);
    for (const p of w.pending.splice(0)) p.land();
    await flush();
    expect(w.pending.map((p) => p.what).sort()).toEqual(['source release s1 drover-base-aaaaaaaa', 'target release s1 drover-base']);
    for (const p of w.pending.splice(0)) p.land();
    await done;
    expect([...w.held.source.get('s2')!]).toEqual([TAGS.source.base]);
    expect(w.held.source.get('s1')!.size + w.held.target.get('s1')!.size).toBe(0);
  });

  it('only holds the snapshot when it is its own base (nothing to release)', async () => {
    const w = sides();
    const done = settleHolds(w.store, w.step, 'ds', 's1', 's1', TAGS);
    await flush();
    expect(w.pending.map((p) => p.what).sort()).toEqual(['source hold s1 drover-base-aaaaaaaa', 'target hold s1 drover-base']);
    for (const p of w.pending.splice(0)) p.land();
    await done;
  });
});

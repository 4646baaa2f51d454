import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { mountingContainers, SnapshotFreezer, type FreezeRuntime } from './snapshot-freeze.ts';

const DS = 'ds-1';

/** A container engine that records what happened, in order, and fails where told. */
function engine(options: { failPause?: Set<string>; failUnpause?: Map<string, number> } = {}) {
  const events: string[] = [];
  const paused = new Set<string>();
  const runtime: FreezeRuntime = {
    pause: async (id) => {
      events.push(`pause ${id}`);
      if (options.failPause?.has(id)) throw new Error(`cannot pause ${id}`);
      paused.add(id);
    },
    unpause: async (id) => {
      events.push(`unpause ${id}`);
      const left = options.failUnpause?.get(id) ?? 0;
      if (left > 0) {
        options.failUnpause!.set(id, left - 1);
        throw new Error(`cannot unpause ${id}`);
      }
      paused.delete(id);
    },
  };
  return { runtime, events, paused };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let journal: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drover-freeze-'));
  journal = join(dir, 'state', 'snapshot-freeze.json');
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

const journalled = async (): Promise<string[]> => JSON.parse(await readFile(journal, 'utf8')).frozen;

describe('SnapshotFreezer', () => {
  it("pauses the dataset's containers only while its snapshot runs, journalled before the pause and cleared after the thaw", async () => {
    const e = engine();
    const freezer = new SnapshotFreezer({ runtime: e.runtime, containersOf: async () => ['c1', 'c2'], journal, log: silentLogger() });
    const answer = await freezer.around(DS, async () => {
      e.events.push('snapshot');
      expect([...e.paused].sort()).toEqual(['c1', 'c2']);
      expect((await journalled()).sort()).toEqual(['c1', 'c2']);
      return 'taken';
    });
    expect(answer).toBe('taken');
    expect(e.events.slice(0, 2).sort()).toEqual(['pause c1', 'pause c2']);
    expect(e.events[2]).toBe('snapshot');
    expect(e.events.slice(3).sort()).toEqual(['unpause c1', 'unpause c2']);
    expect(e.paused.size).toBe(0);
    expect(await journalled()).toEqual([]);
    freezer.close();
  });

  it('thaws when the snapshot fails, and fails as the snapshot did', async () => {
    const e = engine();
    const freezer = new SnapshotFreezer({ runtime: e.runtime, containersOf: async () => ['c1'], journal, log: silentLogger() });
    await expect(freezer.around(DS, async () => Promise.reject(new Error('zfs snapshot failed')))).rejects.toThrow('zfs snapshot failed');
    expect(e.paused.size).toBe(0);
    expect(await journalled()).toEqual([]);
    freezer.close();
  });

  it('thaws at the deadline while the snapshot still runs, and the snapshot then ends unfrozen', async () => {
    const e = engine();
    const freezer = new SnapshotFreezer({ runtime: e.runtime, containersOf: async () => ['c1'], journal, log: silentLogger(), deadlineMs: 50 });
    const began = performance.now();
    await freezer.around(DS, async () => {
      await sleep(300);
      e.events.push('snapshot ended');
    });
    expect(e.events).toEqual(['pause c1', 'unpause c1', 'snapshot ended']);
    expect(performance.now() - began).toBeGreaterThanOrEqual(290);
    expect(e.paused.size).toBe(0);
    freezer.close();
  });

  it('takes the snapshot unfrozen when a container cannot be paused, thawing the ones that were', async () => {
    const e = engine({ failPause: new Set(['c2']) });
    const freezer = new SnapshotFreezer({ runtime: e.runtime, containersOf: async () => ['c1', 'c2'], journal, log: silentLogger() });
    let frozenDuring: string[] = ['unset'];
    await freezer.around(DS, async () => void (frozenDuring = [...e.paused]));
    expect(frozenDuring).toEqual([]);
    expect(e.paused.size).toBe(0);
    expect(await journalled()).toEqual([]);
    freezer.close();
  });

  it('takes the snapshot without pausing anything when no running container mounts the dataset, or they cannot be listed', async () => {
    const e = engine();
    const none = new SnapshotFreezer({ runtime: e.runtime, containersOf: async () => [], journal, log: silentLogger() });
    expect(await none.around(DS, async () => 1)).toBe(1);
    const unknown = new SnapshotFreezer({ runtime: e.runtime, containersOf: async () => Promise.reject(new Error('docker down')), journal, log: silentLogger() });
    expect(await unknown.around(DS, async () => 2)).toBe(2);
    expect(e.events).toEqual([]);
  });

  it('thaws at start what a previous agent journalled and did not thaw', async () => {
    const e = engine();
    e.paused.add('left-1');
    await mkdir(join(dir, 'state'), { recursive: true });
    await writeFile(journal, JSON.stringify({ frozen: ['left-1'] }));
    const freezer = new SnapshotFreezer({ runtime: e.runtime, containersOf: async () => [], journal, log: silentLogger() });
    expect(await freezer.recover()).toEqual(['left-1']);
    expect(e.paused.size).toBe(0);
    expect(await journalled()).toEqual([]);
    freezer.close();
  });

  it('starts with nothing to thaw when the journal is missing or unreadable', async () => {
    const e = engine();
    const freezer = new SnapshotFreezer({ runtime: e.runtime, containersOf: async () => [], journal, log: silentLogger() });
    expect(await freezer.recover()).toEqual([]);
    await mkdir(join(dir, 'state'), { recursive: true });
    await writeFile(journal, '{"frozen": [');
    expect(await freezer.recover()).toEqual([]);
    expect(e.events).toEqual([]);
  });

  it('keeps a container whose thaw failed in the journal and thaws it on a retry', async () => {
    const e = engine({ failUnpause: new Map([['c1', 1]]) });
    const freezer = new SnapshotFreezer({ runtime: e.runtime, containersOf: async () => ['c1'], journal, log: silentLogger() });
    await freezer.around(DS, async () => {});
    expect(e.paused.has('c1')).toBe(true);
    expect(await journalled()).toEqual(['c1']);
    expect(freezer.pending).toEqual(['c1']);
    await sleep(1_300);
    expect(e.paused.has('c1')).toBe(false);
    expect(await journalled()).toEqual([]);
    freezer.close();
  });

  it("does not thaw another dataset's snapshot's containers while that snapshot runs", async () => {
    const e = engine();
    const freezer = new SnapshotFreezer({ runtime: e.runtime, containersOf: async (id) => (id === 'a' ? ['ca'] : ['cb']), journal, log: silentLogger() });
    let release!: () => void;
    const slow = freezer.around('a', () => new Promise<void>((r) => (release = r)));
    await sleep(20);
    await freezer.around('b', async () => {});
    expect(e.paused.has('ca')).toBe(true);
    release();
    await slow;
    expect(e.paused.size).toBe(0);
    freezer.close();
  });

  it('keeps a container frozen through two overlapping snapshots of its dataset without pausing it twice', async () => {
    const e = engine();
    const freezer = new SnapshotFreezer({ runtime: e.runtime, containersOf: async () => ['c1'], journal, log: silentLogger() });
    let first!: () => void;
    const one = freezer.around(DS, () => new Promise<void>((r) => (first = r)));
    await sleep(20);
    let second!: () => void;
    let pausedDuringSecond = false;
    const two = freezer.around(DS, async () => {
      pausedDuringSecond = e.paused.has('c1');
      await new Promise<void>((r) => (second = r));
    });
    await sleep(20);
    expect(pausedDuringSecond).toBe(true);
    first();
    await one;
    // The first snapshot ended; the second still runs: still frozen.
    expect(e.paused.has('c1')).toBe(true);
    second();
    await two;
    expect(e.paused.has('c1')).toBe(false);
    expect(e.events).toEqual(['pause c1', 'unpause c1']);
    expect(await journalled()).toEqual([]);
    freezer.close();
  });
});

describe('mountingContainers', () => {
  it("lists the running containers that bind-mount the dataset's mountpoint or a path under it, reading the mountpoint once", async () => {
    let reads = 0;
    const of = mountingContainers({
      mountpointOf: async () => {
        reads += 1;
        return '/mnt/drover/ds-1';
      },
      listContainers: async () => [
        { id: 'whole', running: true, mountSources: ['/mnt/drover/ds-1'] },
        { id: 'sub', running: true, mountSources: ['/etc/x', '/mnt/drover/ds-1/data'] },
        { id: 'stopped', running: false, mountSources: ['/mnt/drover/ds-1'] },
        { id: 'sibling', running: true, mountSources: ['/mnt/drover/ds-10'] },
      ],
    });
    expect(await of(DS)).toEqual(['whole', 'sub']);
    expect(await of(DS)).toEqual(['whole', 'sub']);
    expect(reads).toBe(1);
  });
});

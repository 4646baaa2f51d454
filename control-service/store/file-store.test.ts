import { appendFile, copyFile, link, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { silentLogger } from '#common/log.ts';
import type { Desired } from '#common/model.ts';
import { FileConfigStore, JOURNAL_PREFIX, STORE_FILE } from './file-store.ts';
import { storeContract } from '../testing/store.contract.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'drover-control-store-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const open = (dir: string) => new FileConfigStore({ dir, log: silentLogger() });

storeContract('FileConfigStore', async () => {
  const dir = await tempDir();
  return { store: open(dir), reopen: async () => open(dir) };
});

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';
const D = '33333333-3333-4333-8333-333333333333';

describe('FileConfigStore on disk', () => {
  it('leaves one versioned JSON file after a clean stop: no temp file, no journal', async () => {
    const dir = await tempDir();
    const store = open(dir);
    await store.load();
    await store.update((d) => ({ ...d, nodes: [{ uuid: A, host: '127.0.0.11', labels: {}, transfer: {} }] }));
    await store.close();
    expect((await readdir(dir)).sort()).toEqual([STORE_FILE]);
    const file = JSON.parse(await readFile(join(dir, STORE_FILE), 'utf8'));
    expect(file.format_version).toBe(1);
    expect(file.version).toBe(1);
    expect(file.desired.nodes[0].uuid).toBe(A);
  });

  it('ignores and removes a temp file left by a crash before the rename', async () => {
    const dir = await tempDir();
    const store = open(dir);
    await store.load();
    const saved = await store.update((d) => ({ ...d, nodes: [{ uuid: A, host: '127.0.0.11', labels: {}, transfer: {} }] }));
    await store.close();
    await writeFile(join(dir, `${STORE_FILE}.tmp-999-1`), '{"format_version":1,"version":7,"desired":{"nodes":[');
    const again = open(dir);
    const loaded = await again.load();
    expect(loaded.version).toBe(saved.version);
    expect(loaded.tag).toBe(saved.tag);
    await again.close();
    expect(await readdir(dir)).toEqual([STORE_FILE]);
  });

  it('upgrades a format 0 file (one volume per application, lease expiry in seconds) and keeps a backup', async () => {
    const dir = await tempDir();
    const v0 = {
      version: 12,
      desired: {
        datasets: [{ dataset_id: D, primary: A }],
        applications: [
          { name: 'db', node_uuid: A, image: 'redis:7', volume: { dataset_id: D, mountpoint: '/data' } },
          { name: 'web', node_uuid: A, image: 'nginx' },
        ],
        leases: [{ dataset_id: D, node_uuid: A, expires: 1_800_000_000 }],
      },
    };
    await writeFile(join(dir, STORE_FILE), JSON.stringify(v0));
    const store = open(dir);
    const loaded = await store.load();
    await store.close();
    expect(loaded.version).toBe(12);
    expect(loaded.desired.applications.map((a) => a.volumes)).toEqual([[{ dataset_id: D, mountpoint: '/data' }], []]);
    expect(loaded.desired.leases).toEqual([{ dataset_id: D, node_uuid: A, expires_at: 1_800_000_000_000 }]);
    const file = JSON.parse(await readFile(join(dir, STORE_FILE), 'utf8'));
    expect(file.format_version).toBe(1);
    expect(JSON.parse(await readFile(join(dir, `${STORE_FILE}.format-0.bak`), 'utf8'))).toEqual(v0);
  });

  it('refuses a file written by a newer drover', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, STORE_FILE), JSON.stringify({ format_version: 99, version: 1, desired: {} }));
    const err = await open(dir).load().catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_STORE_FORMAT')).toBe(true);
    expect((err as Error).message).toContain('newer drover');
  });

  it('refuses a damaged file instead of starting empty', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, STORE_FILE), '{"format_version":1,"vers');
    const err = await open(dir).load().catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_STORE_CORRUPT')).toBe(true);
  });

  it('refuses a file whose document does not validate, naming the path', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, STORE_FILE), JSON.stringify({ format_version: 1, version: 3, desired: { nodes: [{ uuid: B, host: 'nope' }] } }));
    const err = await open(dir).load().catch((e: unknown) => e);
    expect(JSON.stringify(err)).toContain('host');
  });

  it('lets one control service at a time use a data directory', async () => {
    const dir = await tempDir();
    const first = open(dir);
    await first.load();
    const err = await open(dir).load().catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_STORE_LOCKED')).toBe(true);
    await first.close();
    const second = open(dir);
    await second.load();
    await second.close();
  });

  it('takes over the lock of a control service that died', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'control.lock'), '2147483646');
    const store = open(dir);
    await store.load();
    await store.close();
  });
});

/** What a process killed now leaves on disk (its written pages survive it): a copy of the directory. */
async function crashImage(dir: string, only?: (name: string) => boolean): Promise<string> {
  const copy = await tempDir();
  for (const name of await readdir(dir)) if (name !== 'control.lock' && (only?.(name) ?? true)) await copyFile(join(dir, name), join(copy, name));
  return copy;
}
const segmentsIn = async (dir: string) => (await readdir(dir)).filter((n) => n.startsWith(JOURNAL_PREFIX)).sort();
const dataset = (i: number) => `0000000d-0000-4000-8000-${String(i).padStart(12, '0')}`;
const addDataset = (i: number) => (d: Desired): Desired => ({ ...d, datasets: [...d.datasets, { dataset_id: dataset(i), primary: A, metadata: { n: String(i) } } as never] });

describe('FileConfigStore journal', () => {
  it('appends each commit to the journal instead of rewriting the snapshot, and a crash keeps every acknowledged commit', async () => {
    const dir = await tempDir();
    const store = new FileConfigStore({ dir, log: silentLogger() });
    await store.load();
    for (let i = 0; i < 20; i++) await store.update(addDataset(i));
    const acknowledged = store.current();
    expect(await readdir(dir)).not.toContain(STORE_FILE);
    const [segment] = await segmentsIn(dir);
    expect((await readFile(join(dir, segment!), 'utf8')).trim().split('\n')).toHaveLength(20);
    const image = await crashImage(dir);
    await store.close();

    const again = open(image);
    const loaded = await again.load();
    expect(loaded.version).toBe(acknowledged.version);
    expect(loaded.tag).toBe(acknowledged.tag);
    expect(loaded.desired).toEqual(acknowledged.desired);
    await again.close();
    expect(await readdir(image)).toEqual([STORE_FILE]);
  });

  it('ignores a torn last record (its write was never acknowledged) and appends after it safely', async () => {
    const dir = await tempDir();
    const store = open(dir);
    await store.load();
    await store.update(addDataset(1));
    const acknowledged = await store.update(addDataset(2));
    const image = await crashImage(dir);
    await store.close();
    const [segment] = await segmentsIn(image);
    await appendFile(join(image, segment!), '0badf00d {"from":2,"to":3,"tag":"x","changes":{"datasets":{"at":2,"rem');

    const again = open(image);
    expect((await again.load()).tag).toBe(acknowledged.tag);
    const next = await again.update(addDataset(3));
    const image2 = await crashImage(image);
    await again.close();
    const third = open(image2);
    expect((await third.load()).tag).toBe(next.tag);
    await third.close();
  });

  it('refuses a journal damaged before its last record instead of starting without it', async () => {
    const dir = await tempDir();
    const store = open(dir);
    await store.load();
    for (let i = 0; i < 3; i++) await store.update(addDataset(i));
    const image = await crashImage(dir);
    await store.close();
    const [segment] = await segmentsIn(image);
    const path = join(image, segment!);
    await writeFile(path, (await readFile(path, 'utf8')).replace('"n":"0"', '"n":"9"'));
    const err = await open(image).load().catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_STORE_CORRUPT')).toBe(true);
  });

  it('refuses a journal with a gap (a record missing) instead of skipping it', async () => {
    const dir = await tempDir();
    const store = open(dir);
    await store.load();
    for (let i = 0; i < 3; i++) await store.update(addDataset(i));
    const image = await crashImage(dir);
    await store.close();
    const [segment] = await segmentsIn(image);
    const path = join(image, segment!);
    const lines = (await readFile(path, 'utf8')).split('\n');
    await writeFile(path, [lines[0], lines[2], ''].join('\n'));
    const err = await open(image).load().catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_STORE_CORRUPT')).toBe(true);
    expect((err as Error).message).toContain('continues version 2');
  });

  it('folds the journal into the snapshot in the background, and a crash at any step of it loses nothing', async () => {
    const dir = await tempDir();
    const store = new FileConfigStore({ dir, log: silentLogger(), minCompactBytes: 2000 });
    await store.load();
    let i = 0;
    // Before the first compaction: no snapshot, one segment from version 0.
    await store.update(addDataset(i++));
    const oldSegment = (await segmentsIn(dir))[0]!;
    // A second name for the first segment keeps its content after the compaction deletes it.
    const kept = join(await tempDir(), oldSegment);
    await link(join(dir, oldSegment), kept);
    while ((await readdir(dir)).includes(STORE_FILE) === false) {
      await store.update(addDataset(i++));
      await store.compacted();
      expect(i).toBeLessThan(100);
    }
    const folded = store.current();
    const afterFold = await crashImage(dir);
    for (let k = 0; k < 3; k++) await store.update(addDataset(i++));
    const acknowledged = store.current();
    const now = await crashImage(dir);
    await store.close();

    const newSegments = await segmentsIn(now);
    expect(newSegments).toEqual([`${JOURNAL_PREFIX}${folded.version}`]);
    expect(JSON.parse(await readFile(join(afterFold, STORE_FILE), 'utf8')).version).toBe(folded.version);
    // Crash after the new segment was started but before the snapshot was renamed in: the
    // old segment (now complete) and the new one, no snapshot.
    const beforeRename = await tempDir();
    await copyFile(kept, join(beforeRename, oldSegment));
    await copyFile(join(now, newSegments[0]!), join(beforeRename, newSegments[0]!));
    // Crash after the rename, before the old segment was deleted.
    const beforeDelete = await crashImage(now);
    await copyFile(join(beforeRename, oldSegment), join(beforeDelete, oldSegment));
    for (const image of [now, beforeRename, beforeDelete]) {
      const again = open(image);
      const loaded = await again.load();
      expect(loaded.version, image).toBe(acknowledged.version);
      expect(loaded.tag).toBe(acknowledged.tag);
      await again.close();
    }
  });
});

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { silentLogger } from '#common/log.ts';
import { FileConfigStore, STORE_FILE } from './file-store.ts';
import { storeContract } from './store-contract.ts';

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
  it('writes one versioned JSON file and no temp file', async () => {
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

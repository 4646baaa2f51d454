import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { MOUNTS_FILE, MountStore } from './mount-store.ts';
import { addMount, mountCount } from './mounts.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drover-mounts-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const where = { dataset_id: 'd1', path: '/p/d1' };

describe('MountStore', () => {
  it('starts empty when there is no state file', async () => {
    const store = await MountStore.open(join(dir, 'new'));
    expect(store.current.volumes).toEqual({});
  });

  it('keeps the counts across a reopen, as after a restart of the plugin', async () => {
    const store = await MountStore.open(dir);
    await store.update((s) => addMount(s, 'v1', 'A', where).state);
    await store.update((s) => addMount(s, 'v1', 'A', where).state);
    const reopened = await MountStore.open(dir);
    expect(mountCount(reopened.current, 'v1')).toBe(2);
    expect(reopened.current.volumes.v1?.path).toBe('/p/d1');
  });

  it('writes every one of many concurrent updates, and leaves no temporary file', async () => {
    const store = await MountStore.open(dir);
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.update((s) => addMount(s, `v${i % 5}`, `id${i}`, where).state)));
    const reopened = await MountStore.open(dir);
    expect([0, 1, 2, 3, 4].map((i) => mountCount(reopened.current, `v${i}`))).toEqual([10, 10, 10, 10, 10]);
    expect(await readdir(dir)).toEqual([MOUNTS_FILE]);
  });

  it('refuses a corrupt state file instead of forgetting the mounts', async () => {
    await writeFile(join(dir, MOUNTS_FILE), '{"version":1,"volumes":');
    const error = await MountStore.open(dir).catch((e: unknown) => e);
    expect(isDroverError(error, 'DROVER_STATE_CORRUPT')).toBe(true);
    expect((error as Error).message).toContain(join(dir, MOUNTS_FILE));
  });

  it('keeps the counts across a restart within one boot of the host', async () => {
    const store = await MountStore.open(dir, { bootId: 'boot-1' });
    await store.update((s) => addMount(s, 'v1', 'A', where).state);
    expect(mountCount((await MountStore.open(dir, { bootId: 'boot-1' })).current, 'v1')).toBe(1);
  });

  it('forgets mounts counted before a reboot and turns their leases into releases to make', async () => {
    const store = await MountStore.open(dir, { bootId: 'boot-1' });
    await store.update((s) => addMount(s, 'v1', 'A', where).state);
    const rebooted = await MountStore.open(dir, { bootId: 'boot-2' });
    expect(rebooted.current).toEqual({ version: 1, boot_id: 'boot-2', volumes: {}, pending_releases: [{ dataset_id: 'd1', name: 'v1' }] });
    expect((await MountStore.open(dir, { bootId: 'boot-2' })).current.boot_id).toBe('boot-2');
  });

  it('stores plain JSON that a person can read', async () => {
    const store = await MountStore.open(dir);
    await store.update((s) => addMount(s, 'v1', 'A', where).state);
    const text = await readFile(join(dir, MOUNTS_FILE), 'utf8');
    expect(JSON.parse(text)).toEqual({ version: 1, volumes: { v1: { ...where, ids: { A: 1 } } }, pending_releases: [] });
  });
});

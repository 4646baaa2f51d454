import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { RouteCache, routeCachePath } from './route-cache.ts';

const NODE = '00000000-0000-4000-8000-000000000001';
const OTHER = '00000000-0000-4000-8000-000000000002';
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-route-cache-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the proxy route cache', () => {
  it('saves the last table 0600 and a restarted proxy reads it back', async () => {
    const path = routeCachePath(join(tempDir(), 'proxy'));
    const cache = new RouteCache(path, NODE, silentLogger());
    await cache.save({ version: 3, routes: [] });
    await cache.save({ version: 4, routes: [] });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await new RouteCache(path, NODE, silentLogger()).load()).toEqual({ version: 4, routes: [] });
  });

  it("ignores a missing, damaged or another node's file", async () => {
    const path = routeCachePath(tempDir());
    expect(await new RouteCache(path, NODE, silentLogger()).load()).toBeNull();
    writeFileSync(path, '{"format_version": 1, "node_u');
    expect(await new RouteCache(path, NODE, silentLogger()).load()).toBeNull();
    await new RouteCache(path, OTHER, silentLogger()).save({ version: 1, routes: [] });
    expect(JSON.parse(readFileSync(path, 'utf8')).node_uuid).toBe(OTHER);
    expect(await new RouteCache(path, NODE, silentLogger()).load()).toBeNull();
  });
});

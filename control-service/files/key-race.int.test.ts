/**
 * Several control services started at once on one directory (the local cluster's `--control 3`)
 * race to create control.key. Real processes on a real filesystem: every one of them must come
 * up with the same whole key, and no temporary file may be left beside it.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const RACERS = 4;
const ROUNDS = 60;
const STEP_MS = 25;

function race(dir: string, startAt: number): Promise<{ fingerprints: string[]; error?: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'key-racer.ts'), dir, String(startAt), String(ROUNDS), String(STEP_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      try { resolve(JSON.parse(out.trim())); } catch { reject(new Error(`racer exited ${code} with ${JSON.stringify(out)}`)); }
    });
  });
}

describe('creating the control key from several processes at once', () => {
  const dirs: string[] = [];
  afterEach(async () => { await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true }))); });

  it('gives every process the same whole key in every round, and leaves only the keys', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'drover-key-race-'));
    dirs.push(dir);
    // Far enough ahead that every racer has started (tsx loads in ~1 s, more on a loaded machine).
    const startAt = Date.now() + 8_000;
    const results = await Promise.all(Array.from({ length: RACERS }, () => race(dir, startAt)));
    expect(results.map((r) => r.error).filter(Boolean)).toEqual([]);
    for (let round = 0; round < ROUNDS; round += 1) {
      expect(new Set(results.map((r) => r.fingerprints[round])).size, `round ${round}`).toBe(1);
    }
    expect((await readdir(dir)).sort()).toEqual(Array.from({ length: ROUNDS }, (_, i) => `k${i}`).sort());
  }, 90_000);
});

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { backgroundDowns, downInBackground, waitForBackgroundDowns } from './background-down.ts';

// A stand-in for bin/drover.js: records its arguments and whether the lease was locked while
// it ran, then waits for a go file and exits with the code written in it.
const standIn = (lease: string, dir: string): string => `
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const [lease, dir] = [${JSON.stringify(lease)}, ${JSON.stringify(dir)}];
const free = spawnSync('flock', ['-n', lease, 'true']).status === 0;
fs.writeFileSync(dir + '/ran', JSON.stringify({ args: process.argv.slice(2), leaseFree: free }));
const wait = () => fs.existsSync(dir + '/go') ? process.exit(Number(fs.readFileSync(dir + '/go', 'utf8'))) : setTimeout(wait, 20);
console.log('going down'); wait();
`;

describe('a test cluster taken down in the background', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const setUp = () => {
    dir = mkdtempSync(join(tmpdir(), 'drover-bg-down-test-'));
    const records = join(dir, 'records');
    mkdirSync(records);
    const lease = join(dir, 'lease');
    writeFileSync(lease, '');
    writeFileSync(join(dir, 'stand-in.cjs'), standIn(lease, dir));
    return { records, lease };
  };
  const until = async (what: () => boolean) => {
    for (let i = 0; i < 250 && !what(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(what()).toBe(true);
  };

  it('runs `cluster down --name` holding the lease until it ends, and the tier waits for it', async () => {
    const { records, lease } = setUp();
    // The test file's own lock, handed over after the teardown started (as useTestCluster does).
    const holder = spawn('flock', ['-n', lease, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'ignore'] });
    await new Promise((r) => holder.stdout.once('data', r));
    const pid = downInBackground(records, 't7', lease, join(dir, 'stand-in.cjs'));
    writeFileSync(lease, `${pid}\n`);
    holder.stdin.end();
    await until(() => existsSync(join(dir, 'ran')));
    const ran = JSON.parse(readFileSync(join(dir, 'ran'), 'utf8')) as { args: string[]; leaseFree: boolean };
    expect(ran).toEqual({ args: ['cluster', 'down', '--name', 't7'], leaseFree: false });
    expect(() => process.kill(pid, 0)).not.toThrow();
    expect(backgroundDowns(records)).toEqual({ running: ['t7'], failed: [] });

    const waited = waitForBackgroundDowns(records, 10_000);
    writeFileSync(join(dir, 'go'), '0');
    await expect(waited).resolves.toBeUndefined();
    // Its records are gone and the lease is free for the next file, naming nobody.
    expect(existsSync(records)).toBe(false);
    expect(readFileSync(lease, 'utf8')).toBe('');
    expect(spawnSync('flock', ['-n', lease, 'true']).status).toBe(0);
  });

  it('fails the tier naming the cluster and its output when the teardown failed or does not end', async () => {
    const { records, lease } = setUp();
    downInBackground(records, 't8', lease, join(dir, 'stand-in.cjs'));
    await expect(waitForBackgroundDowns(records, 500)).rejects.toThrow(/cluster t8 still going down after 0.5 s/);
    writeFileSync(join(dir, 'go'), '1');
    await expect(waitForBackgroundDowns(records, 10_000)).rejects.toThrow(/the teardown of cluster t8: going down/);
  });
});

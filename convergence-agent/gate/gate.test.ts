import { readFileSync } from 'node:fs';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { execaRunner } from '../zfs/command.ts';
import { isStaticElf } from './elf.ts';
import { Gates } from './gates.ts';
import { GATE_SHELL_IN_CONTAINER, applicationArgv, gatedCommand } from './gate-script.ts';
import { mountOf, parseMountinfo, propagates } from './mountinfo.ts';

describe('the gated command line', () => {
  const image = { entrypoint: ['/entry.sh'], cmd: ['redis-server'] };

  it('runs what Docker would: the image entrypoint and command, or the application overrides', () => {
    expect(applicationArgv({ entrypoint: null, cmd: null }, image)).toEqual(['/entry.sh', 'redis-server']);
    expect(applicationArgv({ entrypoint: null, cmd: ['redis-server', '--port', '7000'] }, image)).toEqual(['/entry.sh', 'redis-server', '--port', '7000']);
    // An entrypoint of the application's own drops the image's command, as in Docker.
    expect(applicationArgv({ entrypoint: ['/bin/app'], cmd: null }, image)).toEqual(['/bin/app']);
    expect(applicationArgv({ entrypoint: null, cmd: null }, { entrypoint: null, cmd: ['sh'] })).toEqual(['sh']);
  });

  it('puts the gate first and passes the argv through as its arguments', () => {
    const { entrypoint, cmd } = gatedCommand(['redis-server', '--dir', '/data']);
    expect(entrypoint.slice(0, 3)).toEqual([GATE_SHELL_IN_CONTAINER, 'sh', '-c']);
    expect(entrypoint[3]).toContain('exec "$@"');
    expect(cmd).toEqual(['redis-server', '--dir', '/data']);
    expect(() => gatedCommand([])).toThrow('no command');
  });
});

describe('mountinfo', () => {
  const text = [
    '22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw',
    '40 22 0:40 / /var/lib/zfs/pool rw shared:5 - fuse.zfs pool rw',
    '41 40 0:41 / /var/lib/zfs/pool/drover rw - fuse.zfs pool/drover rw',
    '42 22 0:42 / /mnt/with\\040space rw master:3 - tmpfs x rw',
  ].join('\n');
  const entries = parseMountinfo(text);

  it('finds the mount that holds a path, the deepest one', () => {
    expect(mountOf(entries, '/var/lib/zfs/pool/drover/abc')?.mountPoint).toBe('/var/lib/zfs/pool/drover');
    expect(mountOf(entries, '/var/lib/zfs/pool/dr')?.mountPoint).toBe('/var/lib/zfs/pool');
    expect(mountOf(entries, '/etc')?.mountPoint).toBe('/');
    expect(mountOf(entries, '/mnt/with space/x')?.mountPoint).toBe('/mnt/with space');
  });

  it('tells a private mount from a shared or slave one', () => {
    expect(entries.map(propagates)).toEqual([false, true, false, true]);
  });
});

describe('isStaticElf', () => {
  it('accepts a static busybox and refuses a dynamically linked program and a script', () => {
    const head = (path: string) => readFileSync(path).subarray(0, 4096);
    expect(isStaticElf(head('/bin/busybox'))).toBe(true);
    expect(isStaticElf(head(process.execPath))).toBe(false);
    expect(isStaticElf(Buffer.from('#!/bin/sh\necho hi\n'.padEnd(128, ' ')))).toBe(false);
  });
});

describe('Gates on the host', () => {
  it('opens a gate: the marker, then state open; sweeps only directories no container uses, after the grace', async () => {
    const root = await mkdtemp(join(tmpdir(), 'drover-gates-'));
    try {
      const gates = new Gates({ root, shell: '/bin/busybox', runner: execaRunner, log: silentLogger() });
      const [used, orphan, young] = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333'];
      for (const id of [used, orphan, young]) await gates.prepare(id);
      expect(await gates.state(used)).toEqual({ state: 'closed' });
      await gates.open(used);
      expect((await gates.state(used)).state).toBe('open');
      const hourAgo = new Date(Date.now() - 3_600_000);
      for (const id of [used, orphan]) await utimes(join(root, id), hourAgo, hourAgo);
      expect(await gates.sweep(new Set([used]), Date.now())).toEqual([orphan]);
      expect(await gates.state(orphan)).toEqual({ state: 'missing' });
      expect((await gates.state(used)).state).toBe('open');
      expect(await gates.state(young)).toEqual({ state: 'closed' });
      await expect(gates.prepare('../etc')).rejects.toThrow('not a uuid');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { missingNodeFlags, nodeFlagsOf } from './node-flags.ts';

const repo = join(import.meta.dirname, '..');

describe('nodeFlagsOf', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const program = async (firstLine: string): Promise<string> => {
    dir = await mkdtemp(join(tmpdir(), 'drover-flags-'));
    const file = join(dir, 'p.js');
    await writeFile(file, `${firstLine}\nconsole.log(1);\n`);
    return file;
  };

  it('reads the flags of drover-agent from its shebang', () => {
    expect(nodeFlagsOf(join(repo, 'bin/drover-agent.js'))).toEqual(['--initial-old-space-size=128']);
  });

  it('gives none for a plain node shebang or a file without one', async () => {
    expect(nodeFlagsOf(await program('#!/usr/bin/env node'))).toEqual([]);
    expect(nodeFlagsOf(await program('// no shebang'))).toEqual([]);
  });

  it('reads several flags, and ignores a line that is not only flags', async () => {
    expect(nodeFlagsOf(await program('#!/usr/bin/env -S node --a=1 --b-c'))).toEqual(['--a=1', '--b-c']);
    expect(nodeFlagsOf(await program('#!/usr/bin/env -S node --a=1 script.js'))).toEqual([]);
  });

  it('names the flags a process lacks', async () => {
    const file = await program('#!/usr/bin/env -S node --a=1 --b');
    expect(missingNodeFlags(file, ['--b'])).toEqual(['--a=1']);
    expect(missingNodeFlags(file, ['--a=1', '--b', '--other'])).toEqual([]);
  });
});

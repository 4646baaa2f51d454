import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// bin/launch.js in a copy of the tree's shape: a program's bundle runs only while it is newer
// than every source it lists; otherwise its sources run through tsx (docs/DESIGN.md §42).
const repo = resolve(import.meta.dirname, '../..');

describe('bin/launch.js', () => {
  let dir: string;
  const run = (env: Record<string, string> = {}): string =>
    execFileSync(process.execPath, [join(dir, 'bin/hello.js')], { encoding: 'utf8', env: { ...process.env, ...env } }).trim();
  const age = (file: string, secondsAgo: number): void => {
    const at = new Date(Date.now() - secondsAgo * 1000);
    utimesSync(join(dir, file), at, at);
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'drover-launch-'));
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'build'));
    mkdirSync(join(dir, 'hello'));
    cpSync(join(repo, 'bin/launch.js'), join(dir, 'bin/launch.js'));
    symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
    writeFileSync(join(dir, 'bin/hello.js'), "import { launch } from './launch.js';\nawait launch('hello', 'hello/main.ts');\n");
    writeFileSync(join(dir, 'hello/main.ts'), "const from: string = 'sources';\nconsole.log(from);\n");
    writeFileSync(join(dir, 'build/hello.mjs'), "console.log('bundle');\n");
    writeFileSync(join(dir, 'build/hello.inputs.json'), JSON.stringify({ entry: 'hello/main.ts', inputs: ['hello/main.ts'] }));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the bundle while it is newer than its sources', () => {
    age('hello/main.ts', 60);
    age('build/hello.mjs', 10);
    expect(run()).toBe('bundle');
  });

  it('runs the sources through tsx once one of them is newer than the bundle, and when asked to', () => {
    age('hello/main.ts', 10);
    age('build/hello.mjs', 60);
    expect(run()).toBe('sources');
    age('hello/main.ts', 60);
    age('build/hello.mjs', 10);
    expect(run({ DROVER_NO_BUNDLE: '1' })).toBe('sources');
  });

  it('runs the sources when the bundle lists a source that is gone, or has no list', () => {
    writeFileSync(join(dir, 'build/hello.inputs.json'), JSON.stringify({ entry: 'hello/main.ts', inputs: ['hello/main.ts', 'hello/gone.ts'] }));
    expect(run()).toBe('sources');
    rmSync(join(dir, 'build/hello.inputs.json'));
    expect(run()).toBe('sources');
  });
});

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// The bundles scripts/bundle.mjs builds (scripts/host-setup.sh runs it): each program's bundle
// is fresh after set-up — so the tests run what an operator runs — and starts as far as reading
// its command line with every module loaded (a dependency that finds files beside itself
// would fail here, at import). docs/DESIGN.md §42.
const repo = resolve(import.meta.dirname, '../..');
const programs = readdirSync(join(repo, 'bin'))
  .filter((f) => f.endsWith('.js') && f !== 'launch.js')
  .map((file) => {
    const match = /launch\('([\w-]+)', '([\w/.-]+)'\)/.exec(readFileSync(join(repo, 'bin', file), 'utf8'));
    return { file, name: match?.[1], entry: match?.[2] };
  });

describe('the programs\' bundles', () => {
  it('names a bundle and an entry in every program of bin/', () => {
    expect(programs.length).toBeGreaterThanOrEqual(7);
    for (const p of programs) expect(p, p.file).toMatchObject({ name: p.file.replace(/\.js$/, ''), entry: expect.stringMatching(/main\.ts$/) });
  });

  it.each(programs.map((p) => [p.name!, p] as const))('%s: fresh, and starts from the bundle far enough to refuse an unknown option', (name) => {
    const bundle = join(repo, 'build', `${name}.mjs`);
    expect(existsSync(bundle), `no build/${name}.mjs: run node scripts/bundle.mjs (scripts/host-setup.sh does)`).toBe(true);
    const built = statSync(bundle).mtimeMs;
    const { inputs } = JSON.parse(readFileSync(join(repo, 'build', `${name}.inputs.json`), 'utf8')) as { inputs: string[] };
    const newer = inputs.filter((input) => statSync(join(repo, input)).mtimeMs > built);
    expect(newer, `sources newer than build/${name}.mjs: run node scripts/bundle.mjs`).toEqual([]);

    const run = spawnSync(process.execPath, [bundle, '--no-such-option'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
    const said = `${run.stdout}\n${run.stderr}`;
    expect(run.status, said).not.toBe(0);
    expect(said).toMatch(/unknown option|usage:/i);
    expect(said).not.toMatch(/\n\s+at .*\.mjs:\d+/);
  });
});

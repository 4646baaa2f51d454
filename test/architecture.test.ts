import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

// docs/DESIGN.md §13: no component imports another; components meet only in common/
// and over HTTP. Each outside library has one adapter file.
const root = resolve(import.meta.dirname, '..');
const components = ['control-service', 'convergence-agent', 'volume-driver', 'proxy', 'cli'] as const;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = join(dir, entry);
    if (entry === 'node_modules') continue;
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full));
    else if (full.endsWith('.ts')) out.push(full);
  }
  return out;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g)) specs.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) specs.push(m[1]!);
  return specs;
}

/** The repository path an import names (`#common/*` included), or null for a package. */
function targetOf(file: string, spec: string): string | null {
  if (spec.startsWith('#common/')) return `common/${spec.slice('#common/'.length)}`;
  if (spec.startsWith('.')) return relative(root, resolve(dirname(file), spec));
  return null;
}

/** Source text without its comments (a comment may name what the code must not do). */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

function topFolder(path: string): string {
  return relative(root, path).split('/')[0]!;
}

describe('architecture', () => {
  it('keeps every component out of every other component', () => {
    const offences: string[] = [];
    for (const component of components) {
      for (const file of sourceFiles(join(root, component))) {
        for (const spec of importsOf(file)) {
          if (!spec.startsWith('.')) continue;
          const target = topFolder(resolve(dirname(file), spec));
          // `drover cluster` is the local cluster's one door into the CLI, loaded on demand.
          if (component === 'cli' && relative(root, resolve(dirname(file), spec)) === 'local-cluster/command.ts') continue;
          if (target !== component) offences.push(`${relative(root, file)} imports ${spec}`);
        }
      }
    }
    expect(offences).toEqual([]);
  });

  it('keeps common/ free of components', () => {
    const offences: string[] = [];
    for (const file of sourceFiles(join(root, 'common'))) {
      for (const spec of importsOf(file)) {
        if (!spec.startsWith('.')) continue;
        if (topFolder(resolve(dirname(file), spec)) !== 'common') offences.push(`${relative(root, file)} imports ${spec}`);
      }
    }
    expect(offences).toEqual([]);
  });

  it('reaches common/ only through #common/*', () => {
    const offences: string[] = [];
    for (const component of [...components, 'test']) {
      for (const file of sourceFiles(join(root, component))) {
        for (const spec of importsOf(file)) {
          if (spec.startsWith('.') && topFolder(resolve(dirname(file), spec)) === 'common') {
            offences.push(`${relative(root, file)} imports ${spec}`);
          }
        }
      }
    }
    expect(offences).toEqual([]);
  });

  // Fakes, contract suites and fixtures live in each component's testing/ folder (or
  // common/testing/); a program that imported one would run on a fake. Test-side files are
  // the tests themselves, test/, bench/ and the testing/ folders.
  const testSide = (rel: string) => /\.test\.ts$/.test(rel) || /^(test|bench)\//.test(rel) || rel === 'vitest.config.ts' || rel.split('/').includes('testing');
  it('lets only tests, test/, bench/ and testing/ folders import from a testing/ folder or vitest', () => {
    const offences: string[] = [];
    for (const file of sourceFiles(root)) {
      const rel = relative(root, file);
      if (testSide(rel)) continue;
      for (const spec of importsOf(file)) {
        const target = targetOf(file, spec);
        if (spec === 'vitest' || spec.startsWith('vitest/') || (target !== null && target.split('/').includes('testing'))) offences.push(`${rel} imports ${spec}`);
      }
    }
    expect(offences).toEqual([]);
  });

  // docs/DESIGN.md §4: nothing under plan/ reads the clock, draws random numbers, does I/O
  // or logs. Held to the same rule: the few modules outside plan/ that it uses, listed here
  // (adding one is a decision), and whatever they import. node:crypto is for the config
  // hash (createHash is a function of its input); its random sources are refused below.
  const PLAN = 'convergence-agent/plan/';
  const PURE_OUTSIDE_PLAN = new Set(['common/model.ts', 'common/channel.ts', 'common/migration-protocol.ts', 'common/errors.ts', 'common/backoff.ts', 'common/retention-grid.ts', 'common/service-subnet.ts', 'convergence-agent/migration/phases.ts', 'convergence-agent/zfs/types.ts']);
  const PURE_PACKAGES = new Set(['zod', 'node:crypto']);
  const IMPURE_CALL = /\b(Date\.now|new Date|Math\.random|setTimeout|setInterval|setImmediate|queueMicrotask|performance\.now|process\.\w+|randomUUID|randomBytes|randomInt|getRandomValues)\s*\(/g;
  it('keeps convergence-agent/plan/ pure: no clock, randomness, timers, I/O or logging, in it or in what it imports', () => {
    const offences: string[] = [];
    const queue = sourceFiles(join(root, PLAN)).filter((f) => !f.endsWith('.test.ts'));
    const seen = new Set(queue);
    while (queue.length > 0) {
      const file = queue.shift()!;
      const rel = relative(root, file);
      for (const m of withoutComments(readFileSync(file, 'utf8')).matchAll(IMPURE_CALL)) offences.push(`${rel} calls ${m[1]}(`);
      for (const spec of importsOf(file)) {
        const target = targetOf(file, spec);
        if (target === null) {
          if (!PURE_PACKAGES.has(spec)) offences.push(`${rel} imports ${spec}`);
          continue;
        }
        if (!target.startsWith(PLAN) && !PURE_OUTSIDE_PLAN.has(target)) {
          offences.push(`${rel} imports ${spec}`);
          continue;
        }
        const full = join(root, target);
        if (!seen.has(full)) {
          seen.add(full);
          queue.push(full);
        }
      }
    }
    expect(offences).toEqual([]);
  });

  // One adapter file per outside library (docs/DESIGN.md §13). The allowed files are
  // listed here; adding a second user of a library means changing this list on purpose.
  const adapters: Record<string, RegExp> = {
    dockerode: /(^|\/)docker(-[a-z]+)?\.ts$|docker-engine\.ts$/,
    ssh2: /ssh[a-z-]*\.ts$/,
    execa: /(command|zfs|exec|run)[a-z-]*\.ts$|local-cluster\/|scripts\//,
    // One prom-client adapter per program (docs/DESIGN.md §25).
    // The control plane on etcd (docs/DESIGN.md §28).
    etcd3: /^control-service\/store\/etcd-client\.ts$/,
    'prom-client': /^(control-service|convergence-agent|proxy|volume-driver)\/prom-metrics\.ts$/,
  };
  it('keeps each outside library behind its adapter files', () => {
    const offences: string[] = [];
    for (const folder of [...components, 'common']) {
      for (const file of sourceFiles(join(root, folder))) {
        const rel = relative(root, file);
        if (rel.endsWith('.test.ts')) continue;
        for (const spec of importsOf(file)) {
          const pattern = adapters[spec];
          if (pattern && !pattern.test(rel)) offences.push(`${rel} imports ${spec}`);
        }
      }
    }
    expect(offences).toEqual([]);
  });

  it('lets local-cluster/ reach into components only for their config schemas, and no component into local-cluster/ but the CLI\'s `drover cluster`', () => {
    const configModules = ['convergence-agent/config.ts', 'proxy/config.ts', 'control-service/config.ts', 'volume-driver/options.ts'];
    const offences: string[] = [];
    for (const file of sourceFiles(join(root, 'local-cluster'))) {
      for (const spec of importsOf(file)) {
        if (!spec.startsWith('.')) continue;
        const target = relative(root, resolve(dirname(file), spec));
        if (['local-cluster', 'common'].includes(topFolder(resolve(dirname(file), spec)))) continue;
        if (!configModules.includes(target)) offences.push(`${relative(root, file)} imports ${spec}`);
      }
    }
    for (const component of components) {
      for (const file of sourceFiles(join(root, component))) {
        for (const spec of importsOf(file)) {
          if (!spec.startsWith('.') || topFolder(resolve(dirname(file), spec)) !== 'local-cluster') continue;
          const allowed = relative(root, file) === 'cli/commands/cluster.ts' && relative(root, resolve(dirname(file), spec)) === 'local-cluster/command.ts';
          if (!allowed) offences.push(`${relative(root, file)} imports ${spec}`);
        }
      }
    }
    expect(offences).toEqual([]);
  });
});

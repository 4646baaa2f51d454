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

  // One adapter file per outside library (docs/DESIGN.md §13). The allowed files are
  // listed here; adding a second user of a library means changing this list on purpose.
  const adapters: Record<string, RegExp> = {
    dockerode: /(^|\/)docker(-[a-z]+)?\.ts$|docker-engine\.ts$/,
    ssh2: /ssh[a-z-]*\.ts$/,
    execa: /(command|zfs|exec|run)[a-z-]*\.ts$|local-cluster\/|scripts\//,
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

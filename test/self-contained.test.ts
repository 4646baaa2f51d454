import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// The repository owns its design (docs/DESIGN.md): no file may send a reader outside it —
// to a sibling folder, to notes nobody else has, or to a section of a document that is not
// here. Every `<file>.md` a text file names exists, and every `<file>.md §N` has a heading N.
const root = resolve(import.meta.dirname, '..');
const TEXT = new Set(['.ts', '.js', '.mjs', '.md', '.sh', '.yml', '.yaml', '.json', '.c', '.h', '.txt']);
const TEXT_NAMES = new Set(['Makefile', 'run', '.gitignore']);
const SKIP_DIRS = new Set(['node_modules', '.git', 'build']);
// This test's own file spells out the offences it refuses.
const SKIP_FILES = new Set(['package-lock.json', 'self-contained.test.ts']);

/** Every text file of the repository, relative to its root. */
function textFiles(dir = root): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = join(dir, entry);
    if (statSync(full).isDirectory()) {
      if (!SKIP_DIRS.has(entry)) out.push(...textFiles(full));
    } else if ((TEXT.has(extname(entry)) || TEXT_NAMES.has(entry)) && !SKIP_FILES.has(entry)) {
      out.push(relative(root, full));
    }
  }
  return out;
}

/**
 * Where a path named in `file` points: beside the file, or from one of the folders above it
 * up to the repository's root (`gate/README.md` in convergence-agent/plan/, `docs/DESIGN.md`
 * anywhere). Null when it is in none of them.
 */
export function resolveMention(file: string, mentioned: string): string | null {
  const candidates: string[] = [];
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    candidates.push(join(dir, mentioned));
    if (dir === '.' || dir === '/' || dir === '') break;
  }
  for (const c of candidates) {
    const abs = resolve(root, c);
    if (abs.startsWith(root) && existsSync(abs)) return relative(root, abs);
  }
  return null;
}

/** Does this Markdown text have a heading numbered `n` (`## 3.`, `## §3`, `### 3 …`)? */
export function hasSection(markdown: string, n: string): boolean {
  return new RegExp(`^#{1,6}\\s+§?${n}(?:[.\\s):]|$)`, 'm').test(markdown);
}

/** What is wrong with one file's text: each offence names the file, the line and why. */
export function offencesIn(file: string, text: string, read: (path: string) => string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const at = `${file}:${i + 1}`;
    if (/(?:\.\.\/)+shared\b|\/work\/shared\b/.test(line)) out.push(`${at}: refers to a folder outside the repository`);
    // Any file ending in .md that the line names (not inside a URL).
    for (const m of line.matchAll(/(?<![\w/:.-])((?:\.{1,2}\/|[\w-]+\/)*[\w.-]+\.md)\b/g)) {
      const name = m[1]!;
      if (line.slice(0, m.index).match(/https?:\/\/\S*$/)) continue;
      if (resolveMention(file, name) === null) out.push(`${at}: names ${name}, which is not in the repository`);
    }
    // Section citations: `x.md §N`, `` `x.md` §N ``, `[x.md](path) §N`, ranges `§N–§M`.
    const cite = /(?:\[[^\]]*\]\(([^)\s]+\.md)\)|`?((?:\.{1,2}\/|[\w-]+\/)*[\w.-]+\.md)`?)\s*§(\d+)(?:\s*[–-]\s*§(\d+))?/g;
    for (const m of line.matchAll(cite)) {
      const name = (m[1] ?? m[2])!;
      const target = resolveMention(file, name);
      if (target === null) continue; // reported above
      const markdown = read(target);
      for (const n of [m[3], m[4]]) {
        if (n !== undefined && !hasSection(markdown, n)) out.push(`${at}: cites ${name} §${n}, but ${target} has no section ${n}`);
      }
    }
  });
  return out;
}

const read = (path: string): string => readFileSync(join(root, path), 'utf8');

describe('the repository is self-contained', () => {
  it('refers to nothing outside the repository and cites only sections that exist', () => {
    const offences = textFiles().flatMap((file) => offencesIn(file, read(file), read));
    expect(offences).toEqual([]);
  });

  it('refuses a folder outside it, a missing note and a section that does not exist', () => {
    const outside = ['..', 'shared', 'DESIGN.md'].join('/');
    const missing = ['reference', 'flocker.md'].join('/');
    const text = [`see ${outside}`, `as ${missing} §5 says`, 'docs/DESIGN.md §99', 'docs/DESIGN.md §5', 'DESIGN.md §4'].join('\n');
    const offences = offencesIn('convergence-agent/loop.ts', text, read);
    expect(offences).toEqual([
      'convergence-agent/loop.ts:1: refers to a folder outside the repository',
      `convergence-agent/loop.ts:1: names ${outside}, which is not in the repository`,
      `convergence-agent/loop.ts:2: names ${missing}, which is not in the repository`,
      'convergence-agent/loop.ts:3: cites docs/DESIGN.md §99, but docs/DESIGN.md has no section 99',
      'convergence-agent/loop.ts:5: names DESIGN.md, which is not in the repository',
    ]);
  });

  it('finds the numbered sections of docs/DESIGN.md', () => {
    expect(hasSection('# x\n## 5. Moving\n', '5')).toBe(true);
    expect(hasSection('## §12 Time\n', '12')).toBe(true);
    expect(hasSection('## 15. Benchmarks\n', '1')).toBe(false);
  });
});

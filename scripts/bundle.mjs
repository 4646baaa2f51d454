#!/usr/bin/env node
// Bundles the programs whose start-up is on a critical path into one plain-JavaScript file
// each (build/<name>.mjs), so Node starts them without compiling TypeScript through tsx:
// drover-receive, the forced command sshd starts for every ssh transfer connection, starts
// in ~0.15 s of CPU instead of ~1 s (docs/DESIGN.md §24). Next to each
// bundle, <name>.inputs.json lists the repository's own source files it was built from;
// bin/<name>.js runs the bundle only while none of them is newer than it, and tsx
// otherwise — a stale bundle never runs. scripts/host-setup.sh runs this.
import { build } from 'esbuild';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ENTRIES = { 'drover-receive': 'convergence-agent/receive/main.ts' };

await mkdir(join(root, 'build'), { recursive: true });
for (const [name, entry] of Object.entries(ENTRIES)) {
  const outfile = join(root, 'build', `${name}.mjs`);
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    metafile: true,
    logLevel: 'warning',
    // CommonJS dependencies (pino, execa's helpers) call require() inside an ES module.
    banner: { js: "import { createRequire as __droverRequire } from 'node:module'; const require = __droverRequire(import.meta.url);" },
  });
  const inputs = Object.keys(result.metafile.inputs).filter((p) => !p.startsWith('node_modules/'));
  // package-lock.json stands for every dependency bundled: an upgrade makes the bundle stale.
  await writeFile(join(root, 'build', `${name}.inputs.json`), `${JSON.stringify({ entry, inputs: [...inputs, 'package-lock.json'] }, null, 1)}\n`);
  process.stdout.write(`bundle: ${relative(root, outfile)} from ${inputs.length} source files\n`);
}

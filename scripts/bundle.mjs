#!/usr/bin/env node
// Bundles each of drover's programs into one plain-JavaScript file (build/<name>.mjs), so Node
// starts them without compiling TypeScript through tsx: a `drover` command, an agent or a
// proxy starts with ~0.5 s of CPU instead of ~1.5 s, and drover-receive — the forced command
// sshd starts for every ssh transfer connection — with ~0.15 s instead of ~1 s (docs/DESIGN.md
// §24, §42). Next to each bundle, <name>.inputs.json lists the repository's own source files
// it was built from; bin/launch.js runs the bundle only while none of them is newer than it,
// and tsx otherwise — a stale bundle never runs. scripts/host-setup.sh runs this.
//
// A source file that finds files beside itself (`import.meta.dirname`, `import.meta.url`:
// the dashboard's browser files, the native relay, bin/ programs it starts) sees its own
// path, not the bundle's: both are rewritten to the source file's place in the repository,
// found from the bundle's own location at run time, so the tree can move after bundling.
import { build } from 'esbuild';
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ENTRIES = {
  drover: 'cli/main.ts',
  'drover-agent': 'convergence-agent/main.ts',
  'drover-control': 'control-service/main.ts',
  'drover-proxy': 'proxy/main.ts',
  'drover-volume': 'volume-driver/main.ts',
  'drover-fence-watchdog': 'convergence-agent/fence-watchdog/main.ts',
  'drover-receive': 'convergence-agent/receive/main.ts',
};

const EXTERNAL = ['ssh2', 'cpu-features', 'etcd3', 'dockerode', 'docker-modem', '@grpc/*'];

// The bundle's first lines: `require` for CommonJS dependencies (pino, execa's helpers) that
// call it inside an ES module, and the repository's root as seen from build/.
const BANNER = [
  "import { createRequire as __droverRequire } from 'node:module';",
  'const require = __droverRequire(import.meta.url);',
  "import { fileURLToPath as __droverFileURLToPath, pathToFileURL as __droverPathToFileURL } from 'node:url';",
  "const __droverRoot = __droverFileURLToPath(new URL('..', import.meta.url));",
].join('\n');

/** Rewrites import.meta.dirname / import.meta.url in the repository's own sources (above). */
const ownPaths = {
  name: 'drover-own-paths',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const file = relative(root, args.path);
      if (file.startsWith('..') || file.split(sep).includes('node_modules')) return undefined;
      const posix = file.split(sep).join('/');
      const dir = posix.includes('/') ? posix.slice(0, posix.lastIndexOf('/')) : '';
      const source = await readFile(args.path, 'utf8');
      const contents = source
        .replaceAll('import.meta.dirname', `(__droverRoot + ${JSON.stringify(dir)}).replace(/\\/$/, '')`)
        .replaceAll('import.meta.filename', `(__droverRoot + ${JSON.stringify(posix)})`)
        .replaceAll('import.meta.url', `__droverPathToFileURL(__droverRoot + ${JSON.stringify(posix)}).href`);
      return { contents, loader: 'ts' };
    });
  },
};

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
    // Class and function names as in the sources: logs and errors name them.
    keepNames: true,
    // build/<name>.mjs.map; NODE_OPTIONS=--enable-source-maps puts the sources in stack traces.
    sourcemap: 'linked',
    logLevel: 'warning',
    banner: { js: BANNER },
    plugins: [ownPaths],
    // These load from node_modules as they are: they find files beside themselves (ssh2's and
    // cpu-features' native bindings, etcd3's and dockerode's buildkit .proto files), which a
    // bundle would break. Every other dependency is bundled: Node loading hundreds of small
    // files costs more start-up CPU than compiling drover's sources did.
    external: EXTERNAL,
  });
  const inputs = Object.keys(result.metafile.inputs).filter((p) => !p.startsWith('node_modules/'));
  // package-lock.json: an upgrade of a dependency rebuilds the bundles too, to be safe.
  await writeFile(join(root, 'build', `${name}.inputs.json`), `${JSON.stringify({ entry, inputs: [...inputs, 'package-lock.json'] }, null, 1)}\n`);
  process.stdout.write(`bundle: ${relative(root, outfile)} from ${inputs.length} source files\n`);
}

// Starts one of drover's programs (docs/DESIGN.md §24, §42): the plain-JavaScript bundle that
// scripts/bundle.mjs built (build/<name>.mjs) when it is newer than every source file it was
// built from, else the TypeScript sources through tsx. A stale bundle never runs: edit a
// source and the next start compiles it. A bundle starts with about a third of tsx's CPU
// (~0.5 s instead of ~1.5 s on the test machine), which every `drover` command, every
// agent, proxy and volume plugin start, and every ssh transfer connection pays.
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** build/<name>.mjs when it exists and no source it lists is newer than it; else null. */
function freshBundle(name) {
  try {
    const bundle = `${root}build/${name}.mjs`;
    const built = statSync(bundle).mtimeMs;
    const { inputs } = JSON.parse(readFileSync(`${root}build/${name}.inputs.json`, 'utf8'));
    for (const input of inputs) if (statSync(`${root}${input}`).mtimeMs > built) return null;
    return bundle;
  } catch {
    return null; // no bundle, or a source gone: run the sources
  }
}

/**
 * Runs the program `name` (its bundle's name) whose TypeScript entry is `entry`, a path from
 * the repository's root. DROVER_NO_BUNDLE=1 runs the sources whatever the bundle.
 */
export async function launch(name, entry) {
  const bundle = process.env.DROVER_NO_BUNDLE === '1' ? null : freshBundle(name);
  if (bundle) {
    await import(bundle);
    return;
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import(`${root}${entry}`);
}

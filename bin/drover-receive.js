#!/usr/bin/env node
// Runs convergence-agent/receive/main.ts: the forced command of drover's ssh key on a node
// (docs/DESIGN.md §24). The zfs stream never passes through this process. sshd starts it for
// every transfer connection, so its start-up counts: the plain-JavaScript bundle that
// scripts/bundle.mjs builds (build/drover-receive.mjs) runs when it is newer than every source
// file it was built from; otherwise the sources run through tsx, as before.
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function freshBundle() {
  try {
    const bundle = `${root}build/drover-receive.mjs`;
    const built = statSync(bundle).mtimeMs;
    const { inputs } = JSON.parse(readFileSync(`${root}build/drover-receive.inputs.json`, 'utf8'));
    for (const input of inputs) if (statSync(`${root}${input}`).mtimeMs > built) return null;
    return bundle;
  } catch {
    return null; // no bundle, or a source gone: run the sources
  }
}

const bundle = freshBundle();
if (bundle) {
  await import(bundle);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../convergence-agent/receive/main.ts');
}

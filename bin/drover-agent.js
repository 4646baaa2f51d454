#!/usr/bin/env -S node --initial-old-space-size=128
// Runs convergence-agent/main.ts through tsx: drover ships TypeScript sources and needs no build step.
// The flags on the first line matter for transfer speed (common/node-flags.ts); whoever starts
// this file with `node` passes them on (nodeFlagsOf).
import { register } from 'tsx/esm/api';

register();
await import('../convergence-agent/main.ts');

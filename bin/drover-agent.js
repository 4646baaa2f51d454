#!/usr/bin/env -S node --initial-old-space-size=128
// Runs convergence-agent/main.ts: its bundle (build/drover-agent.mjs) when fresh, else the
// sources through tsx (bin/launch.js). The flags on the first line matter for transfer speed
// (common/node-flags.ts); whoever starts this file with `node` passes them on (nodeFlagsOf).
import { launch } from './launch.js';

await launch('drover-agent', 'convergence-agent/main.ts');

#!/usr/bin/env node
// Runs convergence-agent/main.ts through tsx: drover ships TypeScript sources and needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../convergence-agent/main.ts');

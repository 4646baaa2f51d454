#!/usr/bin/env node
// Runs proxy/main.ts through tsx: drover ships TypeScript sources and needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../proxy/main.ts');

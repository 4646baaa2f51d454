#!/usr/bin/env node
// Runs volume-driver/main.ts through tsx: drover ships TypeScript sources and needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../volume-driver/main.ts');

#!/usr/bin/env node
// Runs cli/main.ts: its bundle (build/drover.mjs) when fresh,
// else the sources through tsx (bin/launch.js).
import { launch } from './launch.js';

await launch('drover', 'cli/main.ts');

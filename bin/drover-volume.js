#!/usr/bin/env node
// Runs volume-driver/main.ts: its bundle (build/drover-volume.mjs) when fresh,
// else the sources through tsx (bin/launch.js).
import { launch } from './launch.js';

await launch('drover-volume', 'volume-driver/main.ts');

#!/usr/bin/env node
// Runs control-service/main.ts: its bundle (build/drover-control.mjs) when fresh,
// else the sources through tsx (bin/launch.js).
import { launch } from './launch.js';

await launch('drover-control', 'control-service/main.ts');

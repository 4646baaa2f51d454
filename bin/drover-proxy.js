#!/usr/bin/env node
// Runs proxy/main.ts: its bundle (build/drover-proxy.mjs) when fresh,
// else the sources through tsx (bin/launch.js).
import { launch } from './launch.js';

await launch('drover-proxy', 'proxy/main.ts');

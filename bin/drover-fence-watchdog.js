#!/usr/bin/env node
// Runs convergence-agent/fence-watchdog/main.ts: its bundle (build/drover-fence-watchdog.mjs)
// when fresh, else the sources through tsx (bin/launch.js).
// Started by drover-agent (never by hand) to fence the node's failover-enabled applications if
// the agent stops renewing its lease while it is paused or gone (docs/DESIGN.md §18).
import { launch } from './launch.js';

await launch('drover-fence-watchdog', 'convergence-agent/fence-watchdog/main.ts');

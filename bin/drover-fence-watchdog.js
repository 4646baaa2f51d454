#!/usr/bin/env node
// Runs convergence-agent/fence-watchdog/main.ts through tsx: started by drover-agent (never by
// hand) to fence the node's failover-enabled applications if the agent stops renewing its lease
// while it is paused or gone (docs/DESIGN.md §18).
import { register } from 'tsx/esm/api';

register();
await import('../convergence-agent/fence-watchdog/main.ts');

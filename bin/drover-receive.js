#!/usr/bin/env node
// Runs convergence-agent/receive/main.ts through tsx: the forced command of drover's ssh key
// on a node (docs/DESIGN.md §24). The zfs stream never passes through this process.
import { register } from 'tsx/esm/api';

register();
await import('../convergence-agent/receive/main.ts');

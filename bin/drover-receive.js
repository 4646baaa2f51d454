#!/usr/bin/env node
// Runs convergence-agent/receive/main.ts: its bundle (build/drover-receive.mjs) when fresh,
// else the sources through tsx (bin/launch.js).
// The forced command of drover's ssh key on a node (docs/DESIGN.md §24): sshd starts it for
// every transfer connection, so its start-up counts. The zfs stream never passes through it.
import { launch } from './launch.js';

await launch('drover-receive', 'convergence-agent/receive/main.ts');

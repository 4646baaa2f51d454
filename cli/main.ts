// `drover`: the operator's command line. Wires only: process in, exit code out.
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli } from './dispatch.ts';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  sleep: (ms) => sleep(ms),
});

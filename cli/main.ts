// `drover`: the operator's command line. Wires only: process in, exit code out.
import { systemClock } from '#common/clock.ts';
import { runCli } from './dispatch.ts';

// A reader that went away (`drover status | head -1`) is no failure of drover's: stop
// quietly, as a program killed by SIGPIPE would, instead of crashing on the write's EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  sleep: (ms) => systemClock.sleep(ms),
});

/**
 * A gated container (a warm start on a migration's target, gate/README.md): Docker starts it
 * before handoff, and its first process waits behind a gate instead of running the
 * application. Opening the gate `exec`s the application's own command line in place, with the
 * same pid 1, environment, user and working directory. Pure.
 *
 * The waiting process is a static busybox bind-mounted from the host, so the image needs no
 * shell. It holds the gate's FIFO open read-write (which never blocks on Linux, even on a
 * read-only mount), and wakes when the agent writes to it or, at the latest, once a second
 * to look for the `open` marker — a write made while it was not yet waiting is never lost,
 * and a restart after the gate opened goes straight through. SIGTERM ends it at once (pid 1
 * has no default signal actions, so a `docker stop` would otherwise wait out its timeout).
 */

/** Inside the container: the gate's host directory (read-only) and the busybox binary. */
export const GATE_DIR_IN_CONTAINER = '/.drover-gate';
/** busybox picks its applet from argv[0]'s basename: the binary must be called `busybox`. */
export const GATE_SHELL_IN_CONTAINER = '/.drover-gate-bin/busybox';
export const GATE_FIFO = 'release';
export const GATE_MARKER = 'open';

export const GATE_SCRIPT = [
  "trap 'exit 143' TERM INT",
  `exec 3<>${GATE_DIR_IN_CONTAINER}/${GATE_FIFO}`,
  `until [ -e ${GATE_DIR_IN_CONTAINER}/${GATE_MARKER} ]; do read -t 1 _ <&3; done`,
  'exec 3<&-',
  'exec "$@"',
].join('; ');

export interface ImageCommand {
  entrypoint: string[] | null;
  cmd: string[] | null;
}

/**
 * The argv Docker would run for this container: the application's entrypoint, else the
 * image's; the application's command, else the image's — unless the application set its own
 * entrypoint, which (as in Docker) drops the image's command. Empty when there is none.
 */
export function applicationArgv(app: ImageCommand, image: ImageCommand): string[] {
  const entrypoint = app.entrypoint ?? image.entrypoint ?? [];
  const cmd = app.cmd ?? (app.entrypoint !== null ? [] : (image.cmd ?? []));
  return [...entrypoint, ...cmd];
}

/** Entrypoint and Cmd of the gated container: the gate, then the application's argv as its arguments. */
export function gatedCommand(argv: string[]): { entrypoint: string[]; cmd: string[] } {
  if (argv.length === 0) throw new Error('the container has no command to run behind a gate');
  return { entrypoint: [GATE_SHELL_IN_CONTAINER, 'sh', '-c', GATE_SCRIPT, 'drover-gate'], cmd: argv };
}

/**
 * The node flags a drover program runs with, read from its own `#!/usr/bin/env -S node …`
 * line: the bin file is the one place they are written. Whoever starts a program with
 * `process.execPath` (the local cluster, the test stacks) passes them on, so a process
 * started that way runs as it would when started directly.
 *
 * drover-agent's line carries `--initial-old-space-size=128`. A transfer moves every byte
 * through a fresh Buffer; with V8's small default old-generation limit the old space is
 * always "nearly full" next to the young generation, and V8 ran a mark-compact every
 * ~100 ms of a stream. The flag raises the first limit (it is a limit, not memory taken):
 * the tls transport's CPU per GiB fell from 5.8 to 3.3 s and the ssh transport's from
 * 4.3 to 2.2 s (bench:transfer, 2026-12-03).
 */
import { readFileSync } from 'node:fs';

/** The flags after `node` on `program`'s first line; none without a `-S node` shebang. */
export function nodeFlagsOf(program: string): string[] {
  const first = readFileSync(program, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node((?: --[a-z0-9-]+(?:=[\w.-]+)?)*)\s*$/.exec(first);
  return m ? m[1]!.trim().split(/\s+/).filter(Boolean) : [];
}

/** Whether this process runs with every flag `program`'s shebang asks for. */
export function missingNodeFlags(program: string, execArgv: readonly string[] = process.execArgv): string[] {
  return nodeFlagsOf(program).filter((flag) => !execArgv.includes(flag));
}

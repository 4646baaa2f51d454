import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * A test file's cluster taken down while the next file sets its own up (docs/DESIGN.md §14).
 *
 * `useTestCluster` hands its cluster to `downInBackground` when the tier's global set-up
 * (`test/support/global-setup.ts`, the integration tier's) named a directory for the records,
 * and the tier's global teardown waits for every one of them (`waitForBackgroundDowns`), so a
 * run ends with nothing of its clusters left. Without that directory (an e2e file, or a file
 * run under another config) the cluster goes down in the file's `afterAll` as before.
 *
 * The two clusters cannot collide: the next file leases another subnet, hence another name,
 * addresses, pools, bridges, namespaces and sockets. The lease of the cluster going down
 * passes to the teardown: its lease file names the teardown's pid (a live pid keeps the subnet
 * off-limits, see `leaseSubnet`) before the file's own lock is let go, and the teardown holds
 * the lock itself while `drover cluster down` runs, so nobody takes the subnet, and with it
 * the name, until the cluster is gone.
 */
export const BACKGROUND_DOWNS = 'DROVER_TEST_BACKGROUND_DOWNS';

const DROVER = resolve(import.meta.dirname, '../../bin/drover.js');

/**
 * Starts `drover cluster down --name <name>` in a process of its own that outlives this test
 * process, under the lease lock of `leaseFile`; records it in `dir`. Returns the pid that
 * the caller writes into the lease file before releasing its own lock. `drover` is the CLI
 * script run with node (another only in this module's own test).
 */
export function downInBackground(dir: string, name: string, leaseFile: string, drover = DROVER): number {
  const record = join(dir, `${name}-${process.pid}-${Date.now()}`);
  writeFileSync(`${record}.started`, `${name}\n`);
  // The shell line is constant; the lease, programs, name and record are its arguments. It
  // empties the lease file (which names it meanwhile) before it lets the lock go.
  const line = [
    'exec 9<"$1"',
    'if flock -w 300 9; then "$2" "$3" cluster down --name "$4" >"$5.log" 2>&1; s=$?; : >"$1"; else echo "the lease $1 was not let go within 300 s" >"$5.log"; s=1; fi',
    'echo $s >"$5.status"',
  ].join('; ');
  const child = spawn(
    'sh',
    ['-c', line, 'sh', leaseFile, process.execPath, drover, name, record],
    // A client configuration of its own: a test cluster has no context to remove from the user's.
    { detached: true, stdio: 'ignore', env: { ...process.env, DROVER_CONFIG: `${record}.config.yml` } },
  );
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start the teardown of cluster ${name}`);
  return child.pid;
}

/** The clusters recorded in `dir` whose teardown has not ended, and the ones whose teardown failed (with its output). */
export function backgroundDowns(dir: string): { running: string[]; failed: string[] } {
  const running: string[] = [];
  const failed: string[] = [];
  for (const entry of readdirSync(dir)) {
    if (!entry.endsWith('.started')) continue;
    const record = join(dir, entry.slice(0, -'.started'.length));
    const name = readFileSync(`${record}.started`, 'utf8').trim();
    if (!existsSync(`${record}.status`)) running.push(name);
    else if (readFileSync(`${record}.status`, 'utf8').trim() !== '0') {
      const output = existsSync(`${record}.log`) ? readFileSync(`${record}.log`, 'utf8').trim() : '';
      failed.push(`${name}: ${output || 'no output'}`);
    }
  }
  return { running, failed };
}

/**
 * Waits until every teardown recorded in `dir` has ended (at most `timeoutMs`), removes the
 * records and throws when one failed or is still running.
 */
export async function waitForBackgroundDowns(dir: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let state = backgroundDowns(dir);
  while (state.running.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    state = backgroundDowns(dir);
  }
  if (state.running.length === 0) rmSync(dir, { recursive: true, force: true });
  const problems = [
    ...state.failed.map((f) => `the teardown of cluster ${f}`),
    ...state.running.map((name) => `cluster ${name} still going down after ${timeoutMs / 1000} s (records in ${dir})`),
  ];
  if (problems.length > 0) throw new Error(`test clusters not taken down:\n${problems.join('\n')}`);
}

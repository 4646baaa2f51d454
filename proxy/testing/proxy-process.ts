/** drover-proxy as a child process for the process tests: its output collected, its exit awaited. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const BIN = resolve(import.meta.dirname, '../../bin/drover-proxy.js');

/** A service subnet on loopback: local already, so a test's proxy adds no route to the host (docs/DESIGN.md §21). */
const TEST_SERVICE_SUBNET = '127.0.250.0/24';

export function runProxy(args: string[]) {
  const withSubnet = args.includes('--service-subnet') ? args : [...args, '--service-subnet', TEST_SERVICE_SUBNET];
  const child = spawn(process.execPath, [BIN, ...withSubnet], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DROVER_LOG_LEVEL: 'info' } });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, output: () => output };
}

import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The real `bin/drover.js` as a child process: exit codes and messages. Its conversation with
// the real control service is in test/cli/drover-against-control.int.test.ts (a component's
// tests may not import another component).
const root = join(import.meta.dirname, '..');
const fixtures = join(root, 'test', 'fixtures');

function drover(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(root, 'bin', 'drover.js'), ...args],
      { cwd: fixtures, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
    );
  });
}

describe('bin/drover.js', () => {
  it('exits 2 on an unknown command, an unknown flag and a missing file, saying which', async () => {
    const [command, flag, file, missing, cluster] = await Promise.all([
      drover(['launch']),
      drover(['deploy', '--force', 'topology/empty.yml', 'compose/redis.yml']),
      drover(['deploy', 'topology/empty.yml', 'compose/absent.yml']),
      drover(['move', 'web']),
      drover(['cluster', '--help']),
    ]);
    expect(command).toEqual({ code: 2, stdout: '', stderr: 'drover: unknown command "launch" (drover --help lists them)\n' });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/^drover: deploy: Unknown option '--force'\nusage: drover deploy <topology> <compose>/);
    expect(file.code).toBe(2);
    expect(file.stderr).toMatch(/^drover: cannot read the Compose file "compose\/absent.yml": no such file\n/);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^drover: move needs an application and a node\n/);
    // `drover cluster …` is handed to local-cluster/ with its own arguments.
    expect(cluster.code).toBe(0);
    expect(cluster.stdout).toMatch(/^usage: drover cluster up/);
  });

  it('exits 1 when the control service does not answer', async () => {
    const port = await closedPort();
    const run = await drover(['status'], { DROVER_CONTROL: `http://127.0.0.1:${port}` });
    expect(run).toEqual({
      code: 1,
      stdout: '',
      stderr: `drover: cannot reach the control service at http://127.0.0.1:${port} (ECONNREFUSED); set --control or DROVER_CONTROL\n`,
    });
  });
});

describe('bin/drover.js writing to a reader that went away', () => {
  it('exits quietly instead of crashing on EPIPE (drover --help | head -1)', async () => {
    const child = spawn(process.execPath, [join(root, 'bin', 'drover.js'), '--help'], { cwd: fixtures, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });
});

it('prints generated help for drover and for each command', async () => {
  const [main, move] = await Promise.all([drover(['--help']), drover(['move', '--help'])]);
  expect(main.code).toBe(0);
  expect(main.stdout).toMatch(/^Usage: drover <command>/);
  for (const name of ['deploy', 'status', 'move', 'datasets', 'demo', 'cluster']) expect(main.stdout).toMatch(new RegExp(`\\n  ${name} `));
  expect(move.code).toBe(0);
  expect(move.stdout).toMatch(/^Usage: drover move <application> <node/);
  expect(move.stdout).toContain('--no-wait');
  expect(move.stdout).toContain('--control <url>');
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

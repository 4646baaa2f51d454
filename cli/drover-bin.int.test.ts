import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODES, startStandIn, type StandIn } from './testing/stand-in-control.ts';

// The real `bin/drover.js` as a child process: exit codes, messages, and a real HTTP
// conversation. XXX: the server is the stand-in (cli/testing/) until control-service/app.ts
// exports its builder; then these run against the real control service.
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
    // `drover cluster …` is handed to cli/local-cluster/ with its own arguments.
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

  describe('against a listening control service', () => {
    let control: StandIn;
    beforeAll(async () => {
      control = await startStandIn();
    });
    afterAll(async () => {
      await control.close();
    });

    it('deploys, shows status as JSON and starts a move without waiting', async () => {
      const deploy = await drover(['deploy', '--control', control.url, 'topology/two-nodes.yml', 'compose/web-db.yml', '--project', 'shop']);
      expect(deploy.code).toBe(0);
      expect(deploy.stdout).toMatch(/5 added, 0 changed, 0 removed, 0 unchanged\n$/);

      const status = await drover(['status', '--json'], { DROVER_CONTROL: control.url });
      expect(status.code).toBe(0);
      const parsed = JSON.parse(status.stdout);
      expect(parsed.applications.map((a: { name: string; node: string | null }) => [a.name, a.node])).toEqual([
        ['web', '127.0.0.12'],
        ['db', '127.0.0.11'],
        ['cache', null],
      ]);

      const move = await drover(['move', 'db', '127.0.0.12', '--no-wait'], { DROVER_CONTROL: control.url });
      expect(move.code).toBe(0);
      expect(move.stdout).toMatch(new RegExp(`^migration [0-9a-f-]{36} started: moving "db" to 127\\.0\\.0\\.12 \\(${NODES[1]!.uuid}\\)\\n$`));
    });
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

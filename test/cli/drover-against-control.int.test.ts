import { execFile } from 'node:child_process';
import { FakeClock } from '#common/testing/fake-clock.ts';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetIdFor } from '#common/dataset-id.ts';
import { silentLogger } from '#common/log.ts';
import { runCli } from '../../cli/dispatch.ts';
import { buildApp } from '../../control-service/app.ts';
import { Control } from '../../control-service/control.ts';
import { MemoryConfigStore } from '../../control-service/store/memory-store.ts';
import { nodeId, report } from '../../control-service/testing/harness.ts';

// The real `bin/drover.js` against the real control service, listening on an ephemeral
// 127.0.0.1 port. Two agents are played by reports over HTTP (nodes 127.0.0.11 and .12).
const root = join(import.meta.dirname, '..', '..');
const fixtures = join(root, 'test', 'fixtures');
const [N1, N2] = [nodeId(1), nodeId(2)];

function drover(args: string[], url: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(root, 'bin', 'drover.js'), ...args],
      { cwd: fixtures, env: { PATH: process.env.PATH ?? '', DROVER_CONTROL: url }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
    );
  });
}

/** The CLI in-process (faster than a child) for the checks that need no process boundary. */
async function droverHere(args: string[], url: string) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { DROVER_CONTROL: url },
    cwd: fixtures,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  });
  return { code, stdout, stderr };
}

describe('drover against the real control service', () => {
  let app: FastifyInstance;
  let control: Control;
  let url: string;
  // The control service's clock: still, so the nodes stay known however slow the machine is,
  // until a test moves it on.
  const clock = new FakeClock(Date.now());

  beforeAll(async () => {
    control = new Control({ store: new MemoryConfigStore(), log: silentLogger(), clock, nodeTimeoutMs: 15_000 });
    await control.start();
    app = buildApp({ control, log: silentLogger(), version: '0.0.0-test' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    for (const i of [1, 2]) {
      const answer = await fetch(`${url}/v1/drover/agents/report`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(report(i)) });
      expect(answer.status).toBe(200);
    }
  });
  afterAll(async () => {
    await app?.close();
    await control?.stop();
  });

  it('deploys, shows status as JSON, and starts a move without waiting', async () => {
    const deploy = await drover(['deploy', 'topology/two-nodes.yml', 'compose/web-db.yml', '--project', 'shop'], url);
    expect(deploy).toMatchObject({ code: 0, stderr: '' });
    expect(deploy.stdout).toMatch(/^project "shop"\n  \+ application "web"\n/);
    expect(deploy.stdout).toMatch(/\n5 added, 0 changed, 0 removed, 0 unchanged\n/);

    const status = await drover(['status', '--json'], url);
    expect(status.code).toBe(0);
    const parsed = JSON.parse(status.stdout);
    expect(parsed.nodes.map((n: { host: string; state: string }) => [n.host, n.state])).toEqual([
      ['127.0.0.11', 'known'],
      ['127.0.0.12', 'known'],
    ]);
    const apps = Object.fromEntries(parsed.applications.map((a: { name: string; node_uuid: string | null }) => [a.name, a.node_uuid]));
    expect(apps.web).toBe(N2);
    expect(apps.db).toBe(N1);
    expect(parsed.datasets.map((d: { dataset_id: string; primary: string }) => [d.dataset_id, d.primary])).toEqual([
      [datasetIdFor('shop', 'pgdata'), N1],
      [datasetIdFor('shop', 'pgwal'), N1],
    ]);

    const move = await drover(['move', 'db', '127.0.0.12', '--no-wait'], url);
    expect(move).toMatchObject({ code: 0, stderr: '' });
    expect(move.stdout).toMatch(new RegExp(`^migration [0-9a-f-]{36} started: moving "db" to 127\\.0\\.0\\.12 \\(${N2}\\)\\n$`));
    expect(control.desired.migrations.map((m) => [m.application, m.from, m.to])).toEqual([['db', N1, N2]]);
  });

  it('reports everything unchanged when the same files are deployed again', async () => {
    const again = await droverHere(['deploy', 'topology/two-nodes.yml', 'compose/web-db.yml', '--project', 'shop', '--json'], url);
    expect(again.code).toBe(0);
    const diff = JSON.parse(again.stdout).diff;
    expect(diff.added).toEqual([]);
    expect(diff.removed).toEqual([]);
    expect(diff.changed).toEqual([]);
  });

  it('shows the control service refusing a file by file, service and key, and exits 1', async () => {
    const run = await droverHere(['deploy', 'topology/empty.yml', 'compose/refuse-network-mode.yml'], url);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'drover: compose/refuse-network-mode.yml:4:5: service "agent": unsupported key "network_mode": drover connects applications through its routing proxy; services reach each other by name on the project\'s networks ("networks:"), and "ports:" publish on every node\n',
    );
  });

  it('says there is nothing to move when the application is on that node already, and exits 0', async () => {
    const run = await droverHere(['move', 'web', '127.0.0.12'], url);
    expect(run).toEqual({ code: 0, stdout: '"web" is already on 127.0.0.12; nothing to move\n', stderr: '' });
  });

  it('prints the status tables', async () => {
    const run = await droverHere(['status'], url);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^NODES\nADDRESS {5}UUID {34}STATE {2}LABELS\n127\.0\.0\.11 /);
    expect(run.stdout).toContain(`\ndb     127.0.0.11  `);
    expect(run.stdout).toContain('moving to 127.0.0.12 (pending)');
    expect(run.stdout).toContain('\nDATASETS\nID');
  });

  it('shows nodes that stopped reporting as unknown, then down, not gone, and for how long', async () => {
    await clock.advance(20_000);
    const run = await droverHere(['status', '--json'], url);
    expect(JSON.parse(run.stdout).nodes.map((n: { host: string; state: string; silent_ms: number }) => [n.host, n.state, n.silent_ms])).toEqual([
      ['127.0.0.11', 'unknown', 20_000],
      ['127.0.0.12', 'unknown', 20_000],
    ]);
    await clock.advance(40_000);
    const table = (await droverHere(['status'], url)).stdout;
    expect(table).toContain('down (silent 1m00s)');
  });
});

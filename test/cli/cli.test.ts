import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiClient } from '#common/api-client.ts';
import { datasetIdFor } from '#common/dataset-id.ts';
import { runCli } from '../../cli/dispatch.ts';
import { NODES, startControl, type InProcessControl } from './control-in-process.ts';

// The CLI in-process against the real control service in-process, over real HTTP on
// 127.0.0.1. The test plays the agents: after each deploy they report what they run, and
// between two polls of a migration the agents take one step of its script.
const fixtures = join(import.meta.dirname, '..', 'fixtures');
const [N1, N2] = NODES.map((n) => n.uuid) as [string, string];

function buffer(isTTY = false) {
  let text = '';
  return { isTTY, write: (s: string) => (text += s), get text() { return text; } };
}

async function drover(argv: string[], opts: { control?: string; tty?: boolean } = {}) {
  const result = await droverOnly(argv, opts);
  // The agents converge on what was just asked (a no-op when nothing changed).
  if (control !== undefined) await control.reportAll();
  return result;
}

async function droverOnly(argv: string[], opts: { control?: string; tty?: boolean }) {
  const stdout = buffer(opts.tty);
  const stderr = buffer();
  const code = await runCli(argv, {
    stdout,
    stderr,
    env: opts.control === undefined ? {} : { DROVER_CONTROL: opts.control },
    cwd: fixtures,
    sleep: () => control.agentStep(),
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

let control: InProcessControl;
beforeEach(async () => {
  control = await startControl();
});
afterEach(async () => {
  await control.close();
});

const deployArgs = ['deploy', 'topology/two-nodes.yml', 'compose/web-db.yml', '--project', 'shop'];
const pgdata = datasetIdFor('shop', 'pgdata');
const pgwal = datasetIdFor('shop', 'pgwal');

describe('drover deploy', () => {
  it('prints what it added, then reports everything unchanged on a second run', async () => {
    const first = await drover(deployArgs, { control: control.url });
    expect(first).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        'project "shop"',
        '  + application "web"',
        '  + application "db"',
        '  + application "cache"',
        `  + dataset "shop_pgdata" (${pgdata})`,
        `  + dataset "shop_pgwal" (${pgwal})`,
        '5 added, 0 changed, 0 removed, 0 unchanged',
        '',
      ].join('\n'),
    });
    const second = await drover([...deployArgs, '--json'], { control: control.url });
    expect(JSON.parse(second.stdout)).toEqual({
      project: 'shop',
      dry_run: false,
      migrations: [],
      unschedulable: {},
      tag: expect.any(String),
      diff: {
        added: [],
        changed: [],
        removed: [],
        unchanged: ['application "web"', 'application "db"', 'application "cache"', `dataset "shop_pgdata" (${pgdata})`, `dataset "shop_pgwal" (${pgwal})`],
      },
    });
  });

  it('changes nothing with --dry-run', async () => {
    const run = await drover([...deployArgs, '--dry-run'], { control: control.url });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^project "shop" \(dry run: nothing was changed\)\n/);
    expect(run.stdout).toMatch(/would apply: 5 added, 0 changed, 0 removed, 0 unchanged\n$/);
    expect(control.control.desired.applications).toEqual([]);
  });

  it('names the project after the Compose file directory by default', async () => {
    const run = await drover(['deploy', 'topology/empty.yml', 'compose/redis.yml', '--json'], { control: control.url });
    expect(JSON.parse(run.stdout).project).toBe('compose');
  });

  it('shows the file, service and key the control service named, and exits 1', async () => {
    const run = await drover(['deploy', 'topology/empty.yml', 'compose/refuse-privileged.yml'], { control: control.url });
    expect(run).toEqual({ code: 1, stdout: '', stderr: 'drover: compose/refuse-privileged.yml:4:5: service "web": unsupported key "privileged"\n' });
  });

  it('exits 2 naming a file it cannot read', async () => {
    const run = await drover(['deploy', 'topology/nope.yml', 'compose/web-db.yml'], { control: control.url });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^drover: cannot read the topology file "topology\/nope.yml": no such file\n/);
    expect(control.requests).toEqual([]);
  });
});

describe('drover status', () => {
  it('prints nodes, applications and datasets as tables', async () => {
    await drover(deployArgs, { control: control.url });
    const run = await drover(['status'], { control: control.url });
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n')).toEqual([
      'NODES',
      'ADDRESS     UUID                                  STATE  LABELS',
      `127.0.0.11  ${N1}  known  name=n1`,
      `127.0.0.12  ${N2}  known  name=n2`,
      '',
      'APPLICATIONS',
      // cache is in no node's list of the topology: the scheduler places it (seed 7: n1).
      'NAME   NODE        STATE    HEALTH   PORTS      REPLICAS  NOTE',
      'web    127.0.0.12  running  healthy  8080→8000  -         -',
      'db     127.0.0.11  running  healthy  5432→5432  -         -',
      'cache  127.0.0.11  running  healthy  6380→6379  -         -',
      '',
      'DATASETS',
      'ID                                    NAME         PRIMARY     SIZE       PATH                                          REPLICAS',
      `${pgdata}  shop_pgdata  127.0.0.11  10 GiB     /drover/${pgdata}  -`,
      `${pgwal}  shop_pgwal   127.0.0.11  unlimited  /drover/${pgwal}  -`,
      '',
    ]);
  });

  it('shows the replicas of an application and their state in the REPLICAS column', async () => {
    await drover(deployArgs, { control: control.url });
    await new ApiClient({ baseUrl: control.url }).setApplicationReplication('db', { replicas: 1 });
    const run = await drover(['status'], { control: control.url });
    expect(run.stdout).toMatch(/\ndb +127\.0\.0\.11 +running +healthy +5432→5432 +n2 seeding +-\n/);
  });

  it('lists the replicas of a dataset replicated without an application, in the table and in --json', async () => {
    const api = new ApiClient({ baseUrl: control.url });
    const created = await api.createDataset({ primary: N1, metadata: { name: 'bare' } });
    await api.setDatasetReplication(created.dataset_id, { replicas: 1, interval_seconds: 2 });
    await control.reportAll();
    const run = await drover(['status'], { control: control.url });
    expect(run.stdout).toMatch(new RegExp(`\\n${created.dataset_id} +bare +127\\.0\\.0\\.11 +unlimited +\\S+ +n2 seeding\\n`));
    const status = JSON.parse((await drover(['status', '--json'], { control: control.url })).stdout);
    expect(status.datasets.find((d: { dataset_id: string }) => d.dataset_id === created.dataset_id).replicas).toMatchObject([{ node: N2, state: 'seeding', lag_seconds: null }]);
  });

  it('says in the NOTE column which node is silent, and for how long, when an application state is unknown', async () => {
    await drover(deployArgs, { control: control.url });
    // n1 stops reporting; n2 goes on.
    control.clock.advance(20_000);
    await control.reportAll([N2]);
    const run = await droverOnly(['status'], { control: control.url });
    expect(run.stdout).toMatch(/\ndb +127\.0\.0\.11 +unknown +\S+ +5432→5432 +- +node 127\.0\.0\.11 is unknown \(silent 20\.0 s\)\n/);
    expect(run.stdout).toMatch(/\nweb +127\.0\.0\.12 +running +healthy +8080→8000 +- +-\n/);
  });

  it('prints the same facts as JSON with --json', async () => {
    await drover(deployArgs, { control: control.url });
    const status = JSON.parse((await drover(['status', '--json'], { control: control.url })).stdout);
    expect(status.applications[1]).toEqual({
      name: 'db',
      node_uuid: N1,
      node: '127.0.0.11',
      state: 'running',
      running: true,
      health: 'healthy',
      ports: [{ internal: 5432, external: 5432 }],
      unschedulable_reason: null,
      migration: null,
      replicas: [],
      last_error: null,
    });
    expect(status.nodes.map((n: { state: string }) => n.state)).toEqual(['known', 'known']);
    expect(status.datasets[0]).toMatchObject({ dataset_id: pgdata, primary: N1, maximum_size: 10 * 1024 ** 3 });
  });

  it('exits 1 with a clear message when the control service is unreachable', async () => {
    const port = await closedPort();
    const run = await drover(['status', '--control', `http://127.0.0.1:${port}`]);
    expect(run).toEqual({
      code: 1,
      stdout: '',
      stderr: `drover: cannot reach the control service at http://127.0.0.1:${port} (ECONNREFUSED); set --control or DROVER_CONTROL\n`,
    });
  });

  it('names a --control that is not a URL once, with one example, and exits 2', async () => {
    const run = await drover(['status', '--control', 'notaurl']);
    expect(run).toEqual({ code: 2, stdout: '', stderr: 'drover: --control: "notaurl" is not a URL (e.g. https://127.0.0.1:4523)\n' });
    const ftp = await drover(['status', '--control', 'ftp://127.0.0.1:4523']);
    expect(ftp.stderr).toBe('drover: --control: "ftp://127.0.0.1:4523" must be an https:// (or plain loopback http://) URL (e.g. https://127.0.0.1:4523)\n');
  });

  it('exits 2 on an unknown flag', async () => {
    const run = await drover(['status', '--verbose'], { control: control.url });
    expect(run).toEqual({ code: 2, stdout: '', stderr: "drover: status: Unknown option '--verbose'\nusage: drover status [--json]\n" });
  });
});

describe('drover move', () => {
  beforeEach(async () => {
    await drover(deployArgs, { control: control.url });
  });

  it('shows one line per phase, with how long it took, when not on a terminal, then the result', async () => {
    const run = await drover(['move', 'db', 'n2'], { control: control.url });
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^moving "db" to 127\.0\.0\.12 \(migration [0-9a-f-]{36}; before handoff, drover migrations cancel [0-9a-f]{8} stops it\)$/);
    expect(lines.slice(1)).toEqual([
      '✓ pending      0 ms',
      '✓ pre-copy     0 ms  3 rounds, 100 MiB',
      '✓ cutover      0 ms',
      '✓ handoff    180 ms',
      '✓ release      0 ms',
      'moved "db" to 127.0.0.12: 3 round(s), 101 MiB sent, cutover 180 ms',
      'pending 0 ms → pre-copy 0 ms → cutover 0 ms → handoff 180 ms → release 0 ms → done',
    ]);
    expect(run.stdout).not.toContain('\x1b');
  });

  it("redraws the current round's bar on a terminal, against the round's own size, below a line per finished phase", async () => {
    const run = await drover(['move', 'db', '127.0.0.12'], { control: control.url, tty: true });
    expect(run.stdout).toMatch(/\r\x1b\[2Kpre-copy  round 1  \[█+░+\]  60 MiB \/ 100 MiB   60%  30 MiB\/s  ETA 2 s/);
    // Round 2 is its own 40 MiB, not the 100 MiB of both rounds.
    expect(run.stdout).toMatch(/\r\x1b\[2Kpre-copy  round 2  \[█+\]  40 MiB \/ 40 MiB  100%/);
    expect(run.stdout).toMatch(/\r\x1b\[2K✓ pre-copy     0 ms  3 rounds, 100 MiB\n/);
    expect(run.stdout).toMatch(/\nmoved "db" to 127\.0\.0\.12: 3 round\(s\), 101 MiB sent, cutover 180 ms\n/);
  });

  it('returns at once with --no-wait, printing the migration', async () => {
    const run = await drover(['move', 'db', N2, '--no-wait', '--json'], { control: control.url });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ application: 'db', to: N2, phase: 'pending' });
    expect(control.requests.filter((r) => r.startsWith('GET /v1/drover/migrations/'))).toEqual([]);
  });

  it('exits 1 with the reason when the migration fails', async () => {
    control.script = [{ phase: 'pre-copy', round: 1 }, { phase: 'failed', error: 'target pool is full' }];
    const run = await drover(['move', 'db', 'n2'], { control: control.url });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^drover: migration [0-9a-f-]{36} failed: target pool is full; "db" stays where it was\n$/);
  });

  it('names the known nodes when the node is not one of them', async () => {
    const run = await drover(['move', 'db', 'n9'], { control: control.url });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`drover: no node "n9"; known nodes: 127.0.0.11 (${N1}), 127.0.0.12 (${N2})\n`);
  });
});

describe('drover migrations', () => {
  beforeEach(async () => {
    await drover(deployArgs, { control: control.url });
  });

  it('cancels a move that has not handed off, then lists it failed with the reason', async () => {
    const started = JSON.parse((await drover(['move', 'db', N2, '--no-wait', '--json'], { control: control.url })).stdout);
    await control.agentStep();
    const run = await drover(['migrations', 'cancel', started.id.slice(0, 8)], { control: control.url });
    expect(run).toEqual({ code: 0, stdout: `migration ${started.id} cancelled (was pre-copy): "db" stays on its source\n`, stderr: '' });
    expect(control.control.desired.applications.find((a) => a.name === 'db')!.node_uuid).toBe(N1);
    const list = (await drover(['migrations', 'list'], { control: control.url })).stdout.split('\n');
    expect(list[0]).toMatch(/^ID +APPLICATION +FROM +TO +PHASE +ROUND \/ SENT +CUTOVER +ERROR$/);
    expect(list[1]).toMatch(new RegExp(`^${started.id}  db +127\\.0\\.0\\.11  127\\.0\\.0\\.12  failed .* cancelled by the operator$`));
  });

  it('refuses to cancel after handoff, saying the target owns the application', async () => {
    const started = JSON.parse((await drover(['move', 'db', N2, '--no-wait', '--json'], { control: control.url })).stdout);
    for (const _ of control.script.slice(0, 5)) await control.agentStep();
    const run = await drover(['migrations', 'cancel', started.id], { control: control.url });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`drover: Migration ${started.id} cannot be given up: it handed off (phase handoff): node ${N2} is primary now.\n`);
  });
});

describe('drover datasets', () => {
  it('creates, lists, moves and deletes a dataset', async () => {
    const created = JSON.parse((await drover(['datasets', 'create', 'n1', '--size', '1G', '--name', 'scratch', '--json'], { control: control.url })).stdout);
    expect(created).toMatchObject({ primary: N1, maximum_size: 1024 ** 3, metadata: { name: 'scratch' }, deleted: false });
    const list = await drover(['datasets', 'list'], { control: control.url });
    expect(list.stdout).toBe(
      ['ID                                    NAME     PRIMARY     SIZE     PROJECT  DELETED', `${created.dataset_id}  scratch  127.0.0.11  1.0 GiB  -        -`, ''].join('\n'),
    );
    // Its primary is a node that reported: the data moves first, by a migration.
    const move = await drover(['datasets', 'move', 'scratch', '127.0.0.12'], { control: control.url });
    expect(move.stdout).toMatch(new RegExp(`^moving dataset ${created.dataset_id} to 127\\.0\\.0\\.12 \\(migration [0-9a-f-]{36}; drover status shows it\\)\\n$`));
    for (const _ of control.script) await control.agentStep();
    expect(control.control.desired.datasets[0]).toMatchObject({ primary: N2, deleted: false });
    expect((await drover(['datasets', 'delete', created.dataset_id], { control: control.url })).stdout).toBe(`deleted dataset ${created.dataset_id} (scratch)\n`);
    expect(control.control.desired.datasets[0]).toMatchObject({ primary: N2, deleted: true });
  });

  it('shows the paths a schema error named', async () => {
    const run = await drover(['datasets', 'create', 'n1', '--size', '1M'], { control: control.url });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe("drover: The provided JSON doesn't match the required schema.\n  - maximum_size: Too small: expected number to be >=67108864\n");
  });

  it('exits 2 on an unknown subcommand', async () => {
    expect((await drover(['datasets', 'resize', 'x'], { control: control.url })).code).toBe(2);
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('drover nodes, rm, events and bad input', () => {
  beforeEach(async () => {
    await drover(deployArgs, { control: control.url });
  });

  it('lists the nodes with how many applications each runs, and their names with -o wide', async () => {
    const run = await drover(['nodes'], { control: control.url });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.split('\n')[0]).toMatch(/^NAME\s+ADDRESS\s+UUID\s+STATE\s+APPS\s+LAST SEEN$/);
    expect(run.stdout).toMatch(/n1\s+127\.0\.0\.11\s+[0-9a-f]{8}\s+known\s+\d\s+/);
    const wide = await drover(['nodes', '-o', 'wide'], { control: control.url });
    expect(wide.stdout).toMatch(new RegExp(`n1\\s+127\\.0\\.0\\.11\\s+${N1}\\s+known\\s+\\S*(db|web)`));
  });

  it('removes the project and keeps its datasets; with --volumes deletes them; names a project it does not know', async () => {
    const dry = await drover(['rm', 'shop', '--volumes', '--dry-run'], { control: control.url });
    expect(dry.stdout).toContain('would remove application db');
    expect((await control.control.desired.applications).length).toBeGreaterThan(0);
    const rm = await drover(['rm', 'shop'], { control: control.url });
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toMatch(/kept 2 dataset\(s\) of shop with their data/);
    expect(control.control.desired.applications).toEqual([]);
    expect(control.control.desired.datasets.filter((d) => !d.deleted).map((d) => d.dataset_id).sort()).toEqual([pgdata, pgwal].sort());
    const volumes = await drover(['rm', 'shop', '--volumes', '--json'], { control: control.url });
    expect(JSON.parse(volumes.stdout)).toMatchObject({ project: 'shop', applications: [], failed: [] });
    expect(control.control.desired.datasets.filter((d) => !d.deleted)).toEqual([]);
    const none = await drover(['rm', 'nope'], { control: control.url });
    expect(none).toMatchObject({ code: 1, stderr: 'drover: no project "nope"; projects: none\n' });
  });

  it('prints the events kept, one line each, and exits', async () => {
    const run = await drover(['events', '--types', 'configuration'], { control: control.url });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^\S+Z  configuration version \d+ \(tag \S+\)$/m);
  });

  it('names the flag or argument it cannot take, and exits 2', async () => {
    const cases: [string[], string][] = [
      [['nodes', '-o', 'yaml'], '-o "yaml" is not an output format: give -o wide or -o json'],
      [['logs'], 'logs needs an application'],
      [['logs', 'db', '--tail', 'ten'], '--tail "ten" is not a number of lines'],
      [['events', '--since', 'yesterday'], '--since "yesterday" is not an event id'],
      [['completion', 'fish'], 'no completion for shell "fish"'],
      [['rm'], 'rm needs a project'],
    ];
    for (const [argv, message] of cases) {
      const run = await drover(argv, { control: control.url });
      expect(run.code, argv.join(' ')).toBe(2);
      expect(run.stderr).toContain(message);
    }
  });

  it("lists each migration's phase timeline with migrations list -o wide", async () => {
    expect((await drover(['move', 'db', 'n2'], { control: control.url })).code).toBe(0);
    const wide = await drover(['migrations', 'list', '-o', 'wide'], { control: control.url });
    expect(wide.stdout.split('\n')[0]).toMatch(/ERROR\s+TIMELINE$/);
    expect(wide.stdout).toContain('pending 0 ms → pre-copy 0 ms → cutover 0 ms → handoff 180 ms → release 0 ms → done');
  });

  it('prints a bash completion script from the command table', async () => {
    const run = await drover(['completion', 'bash']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('"drover logs") words="--follow -f --tail');
    expect(run.stdout).toContain('complete -F _drover drover');
  });
});

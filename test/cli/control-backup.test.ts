import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caPaths, issuedPaths } from '#common/cluster-ca.ts';
import { runCli } from '../../cli/dispatch.ts';
import { tlsHarness, type TlsHarness } from '../../control-service/testing/tls-harness.ts';

// drover control backup|restore and --control with several services, in-process, against
// control services over real mutual TLS on 127.0.0.1 (docs/DESIGN.md §29). Two clusters,
// each with its own CA: a backup of one is another cluster's to the other.
let a: TlsHarness;
let b: TlsHarness;
let dir: string;
let config: string;
let dead: string;
let dead2: string;

/** An https URL on a port nothing listens on (bound, then closed). */
async function deadUrl(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${(probe.address() as { port: number }).port}`;
  await new Promise((r) => probe.close(r));
  return url;
}

function buffer() {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
}

async function drover(argv: string[]) {
  const stdout = buffer();
  const stderr = buffer();
  const code = await runCli(argv, { stdout, stderr, env: { DROVER_CONFIG: config }, cwd: dir, sleep: async () => undefined });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

function context(name: string, h: TlsHarness, servers: string[]): string {
  const ca = join(h.dir, 'ca');
  const alice = issuedPaths(ca, 'user', 'alice');
  return `  - { name: ${name}, servers: [${servers.map((s) => `"${s}"`).join(', ')}], ca: ${caPaths(ca).cert}, cert: ${alice.certPath}, key: ${alice.keyPath} }`;
}

beforeAll(async () => {
  [a, b] = await Promise.all([tlsHarness(), tlsHarness()]);
  dir = await mkdtemp(join(tmpdir(), 'drover-backup-cli-'));
  // The first of cluster a's "control services" does not answer.
  [dead, dead2] = [await deadUrl(), await deadUrl()];
  config = join(dir, 'config.yml');
  await writeFile(config, ['current-context: a', 'contexts:', context('a', a, [dead, a.url]), context('b', b, [b.url])].join('\n'));
  for (const app of ['db', 'web']) expect((await a.send('alice', 'POST', '/v1/configuration/containers', { name: app, image: `registry.example/${app}` })).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('drover control backup and restore', () => {
  it('reaches the cluster through the second of its servers when the first does not answer', async () => {
    const run = await drover(['status', '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const alice = issuedPaths(join(a.dir, 'ca'), 'user', 'alice');
    const files = ['--ca', caPaths(join(a.dir, 'ca')).cert, '--cert', alice.certPath, '--key', alice.keyPath];
    const both = await drover(['status', '--control', `${dead},${dead2}`, ...files]);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/^drover: cannot reach any control service: https:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\), https:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); set --control/);
  });

  it('writes a backup 0600 naming its cluster, and another cluster refuses it unless --force', async () => {
    const backup = await drover(['control', 'backup', 'a.json']);
    expect(backup.stderr).toBe('');
    expect(backup.stdout).toMatch(/^backup of version \d+ written to .*a\.json: 2 application\(s\), 0 dataset\(s\)/);
    expect((await stat(join(dir, 'a.json'))).mode & 0o777).toBe(0o600);
    const file = JSON.parse(await readFile(join(dir, 'a.json'), 'utf8'));
    expect(file.cluster).toMatch(/^sha256:[0-9a-f]{64}$/);

    const refused = await drover(['--context', 'b', 'control', 'restore', 'a.json']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the backup is of cluster sha256:');
    expect(b.control.desired.applications).toEqual([]);

    const forced = await drover(['--context', 'b', 'control', 'restore', 'a.json', '--force']);
    expect(forced.stderr).toBe('');
    expect(forced.stdout).toMatch(/^restored from a\.json \(forced: another cluster\): version \d+, 2 application\(s\)/);
    expect(b.control.desired.applications.map((x) => x.name).sort()).toEqual(['db', 'web']);
  });

  it('restores its own backup into its own cluster without --force, and names the bad fields of a damaged one', async () => {
    expect((await drover(['control', 'restore', 'a.json'])).code).toBe(0);
    const file = JSON.parse(await readFile(join(dir, 'a.json'), 'utf8'));
    file.desired.applications[0].image = '';
    delete file.format;
    await writeFile(join(dir, 'bad.json'), JSON.stringify(file));
    const version = a.control.snapshot.version;
    const bad = await drover(['control', 'restore', 'bad.json']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('backup.format:');
    expect(bad.stderr).toContain('backup.desired.applications.0.image:');
    expect(a.control.snapshot.version).toBe(version);
    await writeFile(join(dir, 'torn.json'), '{"format": "drover-backup", "desi');
    const torn = await drover(['control', 'restore', 'torn.json']);
    expect(torn.code).toBe(2);
    expect(torn.stderr).toContain('torn.json: not JSON');
  });
});

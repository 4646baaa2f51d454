import { mkdir, mkdtemp, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiClient } from '#common/api-client.ts';
import { nodeFlagsOf } from '#common/node-flags.ts';
import { readTlsIdentity, tlsFetch, type FetchLike } from '#common/tls-client.ts';
import { controlFiles, ensureClusterCertificates, nodeFiles, operatorTls } from '../../local-cluster/index.ts';
import { prepareCompose } from '../../cli/compose-env.ts';
import { readProjectPath } from '../../cli/project-path.ts';
import { ensureNodeCertificate } from '../../convergence-agent/transfer/tls-certs.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';
import { until as waitUntil } from '../migration/stack.ts';

// Files that travel with a project (docs/DESIGN.md §22), end to end: drover-control and two
// drover-agents as processes on a 2-node local cluster (a dockerd each). A project with a
// Compose config, a secret, a read-only bind mount of a project directory, a secret
// environment value and `depends_on: service_healthy` is deployed as the CLI does it; then
// the application is moved to the other node, and its files are there. Everything talks
// mutual TLS with the cluster CA's certificates (docs/DESIGN.md §23).
const root = resolve(import.meta.dirname, '../..');
const SECRET = 'db-pa55word-7f3a';
const TOKEN = 't0p-s3cret-token-91c2';
const TMPFS_MAGIC = 0x01021994;

const COMPOSE = `services:
  db:
    image: drover/busybox:latest
    command: ["sh", "-c", "sleep 4; touch /tmp/ready; exec sleep 3600"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      timeout: 2s
      retries: 1
  web:
    image: drover/busybox:latest
    command: ["sh", "-c", "exec sleep 3600"]
    stop_grace_period: 1s
    environment:
      API_TOKEN: ${TOKEN}
      PLAIN: visible
    x-drover: { secret_env: [API_TOKEN] }
    configs:
      - source: app_conf
        target: /etc/app.conf
        mode: 0440
    secrets: [db_password]
    volumes:
      - ./static:/srv/static:ro
    depends_on:
      db: { condition: service_healthy }
configs:
  app_conf: { file: ./app.conf }
secrets:
  db_password: { file: ./db_password.txt }
`;

/** `until` of the migration stack, with this file's longer default bound. */
const until = <T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 90_000): Promise<T> => waitUntil(what, probe, timeoutMs, 200);

describeWith(['root', 'dockerd', 'zfs'], 'files that travel with a project, on a 2-node local cluster', () => {
  const cluster = useTestCluster({ nodes: 2, docker: true, ssh: false, images: ['busybox'] });
  let dir: string;
  let address = '';
  let control: ResultPromise | null = null;
  const agents: ResultPromise[] = [];
  let api: ApiClient;
  /** GETs as the operator, and as node 2's certificate. */
  let asOperator: FetchLike;
  let asNode2: FetchLike;
  const get = (as: FetchLike, path: string) => as(`${address}${path}`, { method: 'GET', headers: {}, body: null, signal: AbortSignal.timeout(10_000) });
  const node = (i: number) => cluster().nodes[i]!;
  const agentDir = (i: number) => join(node(i).stateDir, 'files-e2e-agent');
  const docker = (i: number, ...args: string[]) => execa('docker', ['-H', node(i).dockerHost!, ...args], { timeout: 60_000 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-files-e2e-'));
    await ensureClusterCertificates(cluster());
    const ctl = controlFiles(cluster());
    const tlsFlags = ['--tls-ca', ctl.ca, '--tls-cert', ctl.cert, '--tls-key', ctl.key, '--revoked', ctl.revoked];
    control = execa('node', [join(root, 'bin/drover-control.js'), '--listen', '127.0.0.1:0', ...tlsFlags, '--data-dir', join(dir, 'control'), '--node-timeout', '3'], {
      cwd: root,
      reject: false,
      stdout: 'pipe',
      stderr: { file: join(dir, 'control.err') },
    });
    const logged: string[] = [];
    const lines = createInterface({ input: control.stdout! });
    address = await new Promise<string>((resolveAddress, reject) => {
      const timer = setTimeout(() => reject(new Error('drover-control did not start within 30 s')), 30_000);
      lines.on('line', (line) => {
        logged.push(line);
        const record = JSON.parse(line) as { msg?: string; address?: string };
        if (record.msg === 'control service started' && record.address) {
          clearTimeout(timer);
          resolveAddress(record.address);
        }
      });
    });
    lines.on('line', (line) => void writeFile(join(dir, 'control.log'), `${line}\n`, { flag: 'a' }));
    await writeFile(join(dir, 'control.log'), logged.map((l) => `${l}\n`).join(''));
    expect(address).toMatch(/^https:/);
    api = new ApiClient({ baseUrl: address, tls: operatorTls(cluster()) });
    asOperator = tlsFetch(operatorTls(cluster()));
    asNode2 = tlsFetch(readTlsIdentity(nodeFiles(cluster(), node(1))));
    for (const i of [0, 1]) {
      const own = nodeFiles(cluster(), node(i));
      // A move goes through the migration protocol even without data: each agent has its transfer identity.
      const tls = join(dir, `tls-${i}`);
      await ensureNodeCertificate({ ca: cluster().ca, dir: tls, commonName: node(i).name, address: node(i).address });
      const config = [
        `control_url: ${address}`,
        `control_tls: { ca_file: ${own.ca}, cert_file: ${own.cert}, key_file: ${own.key} }`,
        `state_dir: ${agentDir(i)}`,
        `node_uuid_file: ${join(node(i).stateDir, 'uuid')}`,
        `address: ${node(i).address}`,
        `pool: ${node(i).pool}`,
        `docker_socket: ${node(i).dockerSocket}`,
        'transport: tls',
        `tls: { port: 4524, ca_file: ${cluster().ca.certPath}, cert_file: ${join(tls, 'node.crt')}, key_file: ${join(tls, 'node.key')} }`,
        'poll_interval_ms: 500',
        'stop_timeout_seconds: 1',
      ].join('\n');
      await writeFile(join(dir, `agent${i}.yml`), config);
      const program = join(root, 'bin/drover-agent.js');
      agents.push(
        execa('node', [...nodeFlagsOf(program), program, '--config', join(dir, `agent${i}.yml`)], {
          cwd: root,
          reject: false,
          stdout: { file: join(dir, `agent${i}.log`) },
          stderr: { file: join(dir, `agent${i}.err`) },
        }),
      );
    }
    // The project, as an operator has it on their machine.
    const project = join(dir, 'shop');
    await mkdir(join(project, 'static', 'css'), { recursive: true });
    await writeFile(join(project, 'compose.yml'), COMPOSE);
    await writeFile(join(project, 'app.conf'), 'listen = 8080\n');
    await writeFile(join(project, 'db_password.txt'), SECRET);
    await writeFile(join(project, 'static', 'index.html'), '<h1>shop</h1>\n');
    await writeFile(join(project, 'static', 'css', 'site.css'), 'h1 { color: teal }\n');
  }, 120_000);

  afterAll(async () => {
    for (const p of [...agents, control]) {
      if (p && p.exitCode === null) {
        p.kill('SIGKILL');
        await p;
      }
    }
    if (dir && process.env.DROVER_KEEP_LOGS === undefined) await rm(dir, { recursive: true, force: true });
  });

  it('deploys the project as the CLI does: its files uploaded, web held until db is healthy', async () => {
    await until('both nodes known', async () => (await api.nodes()).filter((n) => n.state === 'known').length === 2, 60_000);
    const project = join(dir, 'shop');
    const prepared = await prepareCompose({
      text: COMPOSE,
      file: 'compose.yml',
      env: {},
      profiles: [],
      readText: (p) => readFile(join(project, p), 'utf8').catch(() => null),
      readPath: (p) => readProjectPath(join(project, p)),
    });
    expect(prepared.errors).toEqual([]);
    const answer = await api.deploy({
      project: 'shop',
      compose: { file: 'compose.yml', text: prepared.text },
      topology: { file: 'topology.yml', text: `version: 1\nnodes:\n  "${node(0).address}": [db, web]\n` },
      files: Object.fromEntries([...prepared.uploads].map(([sha, bytes]) => [sha, Buffer.from(bytes).toString('base64')])),
    });
    expect(answer.diff.added.length).toBe(2);
    // While db is not healthy yet, status says what web waits for.
    const waiting = await until('web waits for db', async () => (await api.application('web')).waiting, 60_000);
    expect(waiting).toBe('waiting for "db" to be healthy (depends_on: service_healthy)');
    await until('web running', async () => (await api.application('web')).state === 'running', 90_000);
    const started = async (name: string) => Date.parse((await docker(0, 'inspect', '--format', '{{.State.StartedAt}}', name)).stdout);
    // db touches /tmp/ready 4 s after it started; web was created only once db was healthy.
    expect((await started('drover-web')) - (await started('drover-db'))).toBeGreaterThanOrEqual(3_500);
  }, 180_000);

  it('mounts the config, the secret and the project directory read-only, the secret from a tmpfs', async () => {
    const exec = async (i: number, ...cmd: string[]) => (await docker(i, 'exec', 'drover-web', ...cmd)).stdout;
    expect(await exec(0, 'cat', '/etc/app.conf')).toBe('listen = 8080');
    expect(await exec(0, 'stat', '-c', '%a', '/etc/app.conf')).toBe('440');
    expect(await exec(0, 'cat', '/run/secrets/db_password')).toBe(SECRET);
    expect(await exec(0, 'cat', '/srv/static/css/site.css')).toBe('h1 { color: teal }');
    expect(await exec(0, 'env')).toContain(`API_TOKEN=${TOKEN}`);
    const mounts = (await exec(0, 'cat', '/proc/mounts')).split('\n');
    expect(mounts.find((l) => l.split(' ')[1] === '/run/secrets/db_password')?.split(' ')[2]).toBe('tmpfs');
    expect(mounts.find((l) => l.split(' ')[1] === '/etc/app.conf')?.split(' ')[3]).toMatch(/^ro,/);
    expect((await docker(0, 'exec', 'drover-web', 'sh', '-c', 'echo x > /srv/static/index.html').catch((e: { exitCode: number }) => e)).exitCode).not.toBe(0);
    expect((await statfs(join(agentDir(0), 'secrets'))).type).toBe(TMPFS_MAGIC);
  });

  it('returns the secrets from no GET answer and writes them to no log', async () => {
    const n1 = node(0).uuid;
    const reads = ['/v1/configuration/containers', '/v1/state/containers', '/v1/drover/applications', '/v1/drover/applications/web', `/v1/drover/agents/${n1}/desired`, '/v1/drover/nodes', '/v1/configuration/datasets'];
    for (const path of reads) {
      const text = await (await get(asOperator, path)).text();
      expect(text, path).not.toContain(SECRET);
      expect(text, path).not.toContain(TOKEN);
    }
    // The application names the secret by its keyed id only; another node cannot fetch it.
    const web = (await (await get(asOperator, `/v1/drover/agents/${n1}/desired`)).json()) as { applications: { name: string; files?: { kind: string; blob?: string }[]; environment: Record<string, string>; secret_environment?: Record<string, string> }[] };
    const app = web.applications.find((a) => a.name === 'web')!;
    expect(app.environment).toEqual({ PLAIN: 'visible' });
    const secretId = app.files!.find((f) => f.kind === 'secret')!.blob!;
    expect((await get(asNode2, `/v1/drover/agents/${node(1).uuid}/files/${secretId}`)).status).toBe(404);
    expect((await get(asNode2, `/v1/drover/agents/${n1}/files/${secretId}`)).status).toBe(403);
    for (const log of ['control.log', 'control.err', 'agent0.log', 'agent0.err', 'agent1.log', 'agent1.err']) {
      const text = await readFile(join(dir, log), 'utf8').catch(() => '');
      expect(text, log).not.toContain(SECRET);
      expect(text, log).not.toContain(TOKEN);
    }
    // At rest: the control service keeps the secret sealed, nowhere in plain.
    const stored = await execa('grep', ['-rl', SECRET, join(dir, 'control')], { reject: false });
    expect(stored.stdout).toBe('');
  });

  it('materialises the files on the other node after a move, and removes them from the first', async () => {
    await api.moveApplication('web', node(1).uuid);
    await until('web running on n2', async () => {
      const s = await api.application('web');
      return s.node_uuid === node(1).uuid && s.state === 'running';
    }, 90_000);
    const exec = async (...cmd: string[]) => (await docker(1, 'exec', 'drover-web', ...cmd)).stdout;
    expect(await exec('cat', '/etc/app.conf')).toBe('listen = 8080');
    expect(await exec('cat', '/run/secrets/db_password')).toBe(SECRET);
    expect(await exec('cat', '/srv/static/index.html')).toBe('<h1>shop</h1>');
    expect(await exec('env')).toContain(`API_TOKEN=${TOKEN}`);
    await until('n1 cleaned up', async () => {
      const gone = await docker(0, 'inspect', 'drover-web').then(() => false, () => true);
      const files = await stat(join(agentDir(0), 'files', 'web')).then(() => false, () => true);
      const secrets = await stat(join(agentDir(0), 'secrets', 'web')).then(() => false, () => true);
      return gone && files && secrets;
    }, 60_000);
  }, 150_000);
});

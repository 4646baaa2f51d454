import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '#common/log.ts';
import { MemoryVault } from '../files/vault.ts';
import { container, harness, nodeId, report, type Harness } from '../testing/harness.ts';

// Files that travel with a project and secrets (docs/DESIGN.md §22), through the API.
let h: Harness;
afterEach(async () => h?.close());

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const b64 = (text: string) => Buffer.from(text).toString('base64');
const SECRET = 'hunter2-but-longer';

function deployBody(node: string) {
  const files = { './app.conf': { sha256: sha('a = 1\n') }, './pw.txt': { sha256: sha(SECRET) } };
  const compose = [
    'services:',
    '  db:',
    '    image: postgres',
    '    healthcheck: { test: ["CMD", "true"] }',
    '  web:',
    '    image: nginx',
    '    configs: [{ source: conf, target: /etc/app.conf }]',
    '    secrets: [pw]',
    '    environment: { TOKEN: tok-123456, PLAIN: p }',
    '    x-drover: { secret_env: [TOKEN] }',
    '    depends_on: { db: { condition: service_healthy } }',
    'configs: { conf: { file: ./app.conf } }',
    'secrets: { pw: { file: ./pw.txt } }',
    `x-drover-cli: ${JSON.stringify({ interpolated: true, profiles: [], env_files: {}, files })}`,
    '',
  ].join('\n');
  return {
    project: 'shop',
    compose: { file: 'compose.yml', text: compose },
    topology: { file: 'topology.yml', text: `version: 1\nnodes:\n  "127.0.0.11": [db, web]\n` },
    files: { [sha('a = 1\n')]: b64('a = 1\n'), [sha(SECRET)]: b64(SECRET) },
  };
}

describe('files and secrets through the API', () => {
  it('stores a deploy\'s secrets sealed, returns them from no operator read, and only to the node that runs them', async () => {
    const vault = new MemoryVault();
    h = await harness({ vault });
    for (const i of [1, 2]) await h.request('POST', '/v1/drover/agents/report', report(i));
    const deployed = await h.request('POST', '/v1/drover/deploy', deployBody(nodeId(1)));
    expect(deployed.statusCode).toBe(200);
    const web = h.control.desired.applications.find((a) => a.name === 'web')!;
    const secretId = web.files!.find((f) => f.kind === 'secret')!.blob!;
    expect(vault.sealedCopy(secretId)!.includes(Buffer.from(SECRET))).toBe(false);
    for (const url of ['/v1/configuration/containers', '/v1/drover/applications', '/v1/drover/applications/web', `/v1/drover/agents/${nodeId(1)}/desired`]) {
      const text = (await h.request('GET', url)).body;
      expect(text, url).not.toContain(SECRET);
      expect(text, url).not.toContain('tok-123456');
    }
    const mine = await h.request('GET', `/v1/drover/agents/${nodeId(1)}/files/${secretId}`);
    expect(Buffer.from(mine.json<{ content_base64: string }>().content_base64, 'base64').toString()).toBe(SECRET);
    const other = await h.request('GET', `/v1/drover/agents/${nodeId(2)}/files/${secretId}`);
    expect(other.statusCode).toBe(404);
    expect(other.json()).toMatchObject({ code: 'DROVER_FILE_NOT_FOUND' });
  });

  it('refuses an upload whose content is not its name, changing nothing', async () => {
    h = await harness();
    await h.request('POST', '/v1/drover/agents/report', report(1));
    const body = deployBody(nodeId(1));
    body.files[sha('a = 1\n')] = b64('tampered');
    const answer = await h.request('POST', '/v1/drover/deploy', body);
    expect(answer.statusCode).toBe(400);
    expect(answer.json<{ description: string }>().description).toContain("the content's SHA-256 is not its name");
    expect(h.control.desired.applications).toEqual([]);
  });

  it('puts the state of what an application depends on in its node\'s view, and status says what it waits for', async () => {
    h = await harness();
    await h.request('POST', '/v1/drover/agents/report', report(1));
    await h.request('POST', '/v1/drover/deploy', deployBody(nodeId(1)));
    const view = () => h.request('GET', `/v1/drover/agents/${nodeId(1)}/desired`).then((r) => r.json<{ dependencies?: Record<string, unknown> }>());
    expect((await view()).dependencies).toEqual({ db: { started: false, healthy: false, completed: false } });
    const waiting = { subject: 'container:drover-web', kind: 'blocked', reason: 'waiting for "db" to be healthy (depends_on: service_healthy)' } as const;
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('db', { health: 'starting' })], problems: [waiting] }));
    expect((await h.request('GET', '/v1/drover/applications/web')).json()).toMatchObject({ state: 'missing', waiting: waiting.reason });
    await h.request('POST', '/v1/drover/agents/report', report(1, { containers: [container('db', { health: 'healthy' })] }));
    expect((await view()).dependencies).toEqual({ db: { started: true, healthy: true, completed: false } });
  });
});

describe('the log', () => {
  it('redacts file contents, containers\' environments and a deploy body\'s uploads', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const log = createLogger('t', { level: 'info' }, sink);
    log.info({ answer: { content_base64: b64(SECRET) }, spec: { env: [`TOKEN=${SECRET}`] }, body: { files: { x: b64(SECRET) } } }, 'logged');
    expect(lines.join('')).toContain('[redacted]');
    expect(lines.join('')).not.toContain(b64(SECRET));
    expect(lines.join('')).not.toContain(SECRET);
  });
});

describe('secrets through the API', () => {
  it('stores a secret sealed and answers only its id, which an application\'s secret_environment names', async () => {
    const vault = new MemoryVault();
    h = await harness({ vault });
    await h.request('POST', '/v1/drover/agents/report', report(1));
    const created = await h.request('POST', '/v1/drover/secrets', { content_base64: b64(SECRET) });
    expect(created.statusCode).toBe(201);
    const { id } = created.json<{ id: string }>();
    expect(created.body).not.toContain(b64(SECRET));
    expect(vault.sealedCopy(id)!.includes(Buffer.from(SECRET))).toBe(false);
    await h.control.change((d) => ({ ...d, applications: [...d.applications, { ...(h.control.desired.applications[0] ?? {}), name: 'api', image: 'nginx', node_uuid: nodeId(1), environment: {}, ports: [], volumes: [], links: [], labels: {}, restart_policy: { name: 'never' }, replication: null, secret_environment: { TOKEN: id } }] }));
    const fetched = await h.request('GET', `/v1/drover/agents/${nodeId(1)}/files/${id}`);
    expect(fetched.json()).toMatchObject({ kind: 'secret', content_base64: b64(SECRET) });
  });
});

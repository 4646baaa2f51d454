import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import type { Application } from '#common/model.ts';
import { parseDeployment } from './index.ts';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const secretIdOf = (bytes: Uint8Array) => createHmac('sha256', 'test-key').update(bytes).digest('hex');

/** A deploy as the CLI sends it: the trailer names each path's content, the uploads carry them. */
function deploy(body: string, files: Record<string, string | Record<string, string> | null | { error: string }> = {}): Application[] {
  const refs: Record<string, unknown> = {};
  const uploads = new Map<string, Uint8Array>();
  for (const [path, content] of Object.entries(files)) {
    if (content === null || (typeof content === 'object' && 'error' in content)) refs[path] = content;
    else if (typeof content === 'string') {
      refs[path] = { sha256: sha(content) };
      uploads.set(sha(content), Buffer.from(content));
    } else {
      refs[path] = { tree: Object.fromEntries(Object.entries(content).map(([rel, text]) => [rel, sha(text)])) };
      for (const text of Object.values(content)) uploads.set(sha(text), Buffer.from(text));
    }
  }
  const trailer = `x-drover-cli: ${JSON.stringify({ interpolated: true, profiles: [], env_files: {}, files: refs })}\n`;
  return parseDeployment({
    project: 'p',
    compose: { file: 'c.yml', text: `${body}${trailer}` },
    topology: { file: 't.yml', text: 'version: 1\nnodes: {}\n' },
    nodes: [],
    files: { uploads, secretIdOf },
  }).applications;
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (!isDroverError(err, 'DROVER_BAD_CONFIG')) throw err;
    const list = err.detail.problems as { message: string }[] | undefined;
    return list ? list.map((p) => p.message) : [err.message];
  }
  throw new Error('accepted');
}

describe('configs, secrets and project files', () => {
  it('reads configs and secrets in the short and long syntax, at Compose\'s default places', () => {
    const [web] = deploy(
      [
        'services:',
        '  web:',
        '    image: nginx',
        '    configs: [site, { source: site, target: /etc/nginx/conf.d/site.conf, mode: 0440, uid: "101", gid: 101 }]',
        '    secrets: [pw, { source: pw, target: db.pw }]',
        'configs:',
        '  site: { file: ./site.conf }',
        'secrets:',
        '  pw: { environment: DB_PASSWORD }',
        '',
      ].join('\n'),
      { './site.conf': 'server {}\n', 'env:DB_PASSWORD': 'hunter2' },
    );
    const pw = secretIdOf(Buffer.from('hunter2'));
    expect(web!.files).toEqual([
      { target: '/site', kind: 'config', blob: sha('server {}\n') },
      { target: '/etc/nginx/conf.d/site.conf', kind: 'config', blob: sha('server {}\n'), mode: 0o440, uid: '101', gid: '101' },
      { target: '/run/secrets/pw', kind: 'secret', blob: pw },
      { target: '/run/secrets/db.pw', kind: 'secret', blob: pw },
    ]);
  });

  it('ships a read-only bind mount of a project file or directory, and keeps an inline config', () => {
    const [web] = deploy(
      [
        'services:',
        '  web:',
        '    image: nginx',
        '    volumes:',
        '      - ./nginx.conf:/etc/nginx/nginx.conf:ro',
        '      - { type: bind, source: ./html, target: /usr/share/nginx/html, read_only: true }',
        '    configs: [motd]',
        'configs:',
        '  motd: { content: "hello" }',
        '',
      ].join('\n'),
      { './nginx.conf': 'events {}\n', './html': { 'index.html': '<h1>hi</h1>', 'img/logo.svg': '<svg/>' } },
    );
    expect(web!.files).toEqual([
      { target: '/motd', kind: 'config', blob: sha('hello') },
      { target: '/etc/nginx/nginx.conf', kind: 'bind', blob: sha('events {}\n') },
      { target: '/usr/share/nginx/html', kind: 'bind', tree: { 'index.html': sha('<h1>hi</h1>'), 'img/logo.svg': sha('<svg/>') } },
    ]);
  });

  it('moves environment values marked secret out of the environment, under their secret ids', () => {
    const [web] = deploy('services:\n  web:\n    image: nginx\n    environment: { TOKEN: abc, PLAIN: x }\n    x-drover: { secret_env: [TOKEN] }\n');
    expect(web!.environment).toEqual({ PLAIN: 'x' });
    expect(web!.secret_environment).toEqual({ TOKEN: secretIdOf(Buffer.from('abc')) });
    expect(JSON.stringify(web)).not.toContain('abc');
  });

  it('refuses every bind mount that cannot travel, and every missing or oversized file, all at once', () => {
    expect(
      problems(() =>
        deploy(
          [
            'services:',
            '  web:',
            '    image: nginx',
            '    volumes:',
            '      - ./data:/data',
            '      - /var/run/docker.sock:/var/run/docker.sock:ro',
            '      - ../outside.conf:/etc/x.conf:ro',
            '      - ./missing.conf:/etc/y.conf:ro',
            '      - ./big.bin:/big.bin:ro',
            '    secrets: [undeclared]',
            '    environment: { A: b }',
            '    x-drover: { secret_env: [NOPE] }',
            'secrets:',
            '  ext: { external: true }',
            '  inline: { content: x }',
            '',
          ].join('\n'),
          { './missing.conf': null, './big.bin': { error: 'is 3 MiB; a file that travels with the project is at most 1 MiB' } },
        ),
      ),
    ).toEqual([
      'c.yml:5:9: service "web": key "volumes[0]": "./data": a read-write bind mount of a host directory does not move with the service; use a named volume: drover moves it with the service (or add ":ro" to ship a project file with the deploy)',
      'c.yml:6:9: service "web": key "volumes[1]": "/var/run/docker.sock": a host path stays on its host and does not move with the service; use a named volume (drover moves it with the service), or a file of the project ("./file:/path:ro")',
      'c.yml:7:9: service "web": key "volumes[2]": "../outside.conf" is outside the project\'s directory; only files of the project travel with it',
      'c.yml:8:9: service "web": key "volumes[3]": "./missing.conf": no such file or directory beside the Compose file',
      'c.yml:9:9: service "web": key "volumes[4]": "./big.bin": is 3 MiB; a file that travels with the project is at most 1 MiB',
      'c.yml:10:15: service "web": key "secrets[0]": secret "undeclared" is not declared under the top-level "secrets:"',
      'c.yml:12:30: service "web": key "x-drover.secret_env[0]": "NOPE" is not in the service\'s environment (nor its env_file)',
      'c.yml:14:10: unsupported key "secrets.ext.external": drover keeps a project\'s files with the project; give "file:" or "environment:"',
      'c.yml:15:13: key "secrets.inline.content": a secret\'s value does not belong in the Compose file; give "file:" or "environment:"',
    ]);
  });

  it('asks for the drover CLI when a file arrives without its trailer', () => {
    const text = 'services:\n  web:\n    image: nginx\n    configs: [c]\nconfigs:\n  c: { file: ./c.conf }\n';
    expect(() => parseDeployment({ project: 'p', compose: { file: 'c.yml', text }, topology: { file: 't.yml', text: 'version: 1\nnodes: {}\n' }, nodes: [] })).toThrow(
      'c.yml:6:8: key "configs.c.file": "./c.conf" is a file on the deploying machine; deploy with the drover CLI, which uploads it with the deploy',
    );
  });
});

describe('depends_on conditions', () => {
  const two = (condition: string, db = '    healthcheck: { test: ["CMD", "true"] }\n') =>
    `services:\n  db:\n    image: postgres\n${db}  web:\n    image: nginx\n    depends_on:\n      db: { condition: ${condition} }\n`;

  it('orders start-up by every condition, and by the short form (service_started)', () => {
    for (const condition of ['service_started', 'service_healthy', 'service_completed_successfully']) {
      expect(deploy(two(condition)).find((a) => a.name === 'web')!.depends_on).toEqual([{ application: 'db', condition }]);
    }
    expect(deploy('services:\n  db: { image: postgres }\n  web: { image: nginx, depends_on: [db] }\n').find((a) => a.name === 'web')!.depends_on).toEqual([{ application: 'db', condition: 'service_started' }]);
  });

  it('refuses service_healthy on a service without a health check, and completion of one that always restarts', () => {
    expect(problems(() => deploy(two('service_healthy', ''))).at(0)).toBe(
      'c.yml:7:13: service "web": key "depends_on.db.condition": "service_healthy" needs a health check on service "db" ("healthcheck:" or "x-drover-healthcheck:"); it has none',
    );
    expect(problems(() => deploy(two('service_completed_successfully', '    restart: always\n'))).at(0)).toBe(
      'c.yml:8:13: service "web": key "depends_on.db.condition": service "db" restarts always, so it never completes; give it "restart: no" or "on-failure", or use "service_started"',
    );
  });
});

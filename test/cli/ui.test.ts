import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/dispatch.ts';

// `drover ui` (docs/DESIGN.md §26, §27), in-process: it reads the context and prints; nothing
// listens at the addresses it names, and it must not need anything to.
let dir: string;
let config: string;

function buffer() {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
}

async function drover(argv: string[], env: Record<string, string> = {}) {
  const stdout = buffer();
  const stderr = buffer();
  const code = await runCli(argv, { stdout, stderr, env: { DROVER_CONFIG: config, ...env }, cwd: dir, sleep: async () => undefined });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drover ui-'));
  config = join(dir, 'config.yml');
  const certs = join(dir, 'my certs');
  await writeFile(
    config,
    [
      'current-context: ha',
      'contexts:',
      `  - { name: ha, servers: ["https://127.0.0.1:1", "https://127.0.0.2:1"], ca: ${join(dir, 'ca.crt')}, cert: "${join(certs, 'alice.crt')}", key: "${join(certs, 'alice.key')}" }`,
      '  - { name: plain, server: "http://127.0.0.1:1" }',
    ].join('\n'),
  );
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('drover ui', () => {
  it('prints the dashboard URL of the current context and the one openssl line that gives a browser the user certificate, quoted for the shell', async () => {
    const out = await drover(['ui']);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const lines = out.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('https://127.0.0.1:1/ui');
    const p12 = join(dir, 'my certs', 'alice.p12');
    expect(lines[2]).toBe(`  openssl pkcs12 -export -in '${join(dir, 'my certs', 'alice.crt')}' -inkey '${join(dir, 'my certs', 'alice.key')}' -certfile '${join(dir, 'ca.crt')}' -out '${p12}'`);
    expect(out.stdout).toContain(`import ${p12}`);
    expect(out.stdout).toContain(`trust the cluster CA ${join(dir, 'ca.crt')} as an authority`);
  });

  it('answers JSON with every control service\'s URL, and a plain-HTTP context with its URL alone', async () => {
    const json = JSON.parse((await drover(['ui', '--json'])).stdout) as { url: string; urls: string[]; pkcs12: { file: string } | null };
    expect(json.urls).toEqual(['https://127.0.0.1:1/ui', 'https://127.0.0.2:1/ui']);
    expect(json.pkcs12?.file).toBe(join(dir, 'my certs', 'alice.p12'));
    const plain = await drover(['ui', '--context', 'plain']);
    expect(plain).toEqual({ code: 0, stderr: '', stdout: 'http://127.0.0.1:1/ui\n' });
  });

  it('refuses arguments as a usage error, and is in the help and in shell completion', async () => {
    const bad = await drover(['ui', 'now']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('ui takes no arguments, got "now"');
    const unknown = await drover(['ui', '--context', 'nowhere']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('nowhere');
    expect((await drover(['--help'])).stdout).toMatch(/\n\s+ui\s+print the web dashboard's URL/);
    expect((await drover(['completion', 'bash'])).stdout).toContain('"drover ui") words=');
  });
});

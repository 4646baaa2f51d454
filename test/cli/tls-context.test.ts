import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caPaths, issue, issuedPaths } from '#common/cluster-ca.ts';
import { runCli } from '../../cli/dispatch.ts';
import { tlsHarness, type TlsHarness } from '../../control-service/testing/tls-harness.ts';

// The CLI in-process against a control service over real mutual TLS on 127.0.0.1
// (docs/DESIGN.md §23): a context of the config file, or --ca/--cert/--key, says who it is.
let h: TlsHarness;
let config: string;

function buffer() {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
}

async function drover(argv: string[], env: Record<string, string>) {
  const stdout = buffer();
  const stderr = buffer();
  const code = await runCli(argv, { stdout, stderr, env, cwd: '/', sleep: async () => undefined });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

beforeAll(async () => {
  h = await tlsHarness();
  const ca = join(h.dir, 'ca');
  const alice = issuedPaths(ca, 'user', 'alice');
  config = join(h.dir, 'config.yml');
  await writeFile(
    config,
    [
      'current-context: lab',
      'contexts:',
      `  - { name: lab, server: "${h.url}", ca: ${caPaths(ca).cert}, cert: ${alice.certPath}, key: ${alice.keyPath} }`,
      `  - { name: bare, server: "${h.url}" }`,
    ].join('\n'),
  );
  await issue(ca, { role: 'user', name: 'bob' });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('drover over mutual TLS', () => {
  it("talks to the control service with the current context's server and user certificate", async () => {
    const run = await drover(['status', '--json'], { DROVER_CONFIG: config });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });

  it('takes --ca/--cert/--key over the context, and the files of DROVER_* variables', async () => {
    const bob = issuedPaths(join(h.dir, 'ca'), 'user', 'bob');
    const ca = caPaths(join(h.dir, 'ca')).cert;
    expect((await drover(['status', '--context', 'bare', '--ca', ca, '--cert', bob.certPath, '--key', bob.keyPath], { DROVER_CONFIG: config })).code).toBe(0);
    expect((await drover(['status'], { DROVER_CONFIG: join(h.dir, 'none.yml'), DROVER_CONTROL: h.url, DROVER_CA: ca, DROVER_CERT: bob.certPath, DROVER_KEY: bob.keyPath })).code).toBe(0);
  });

  it('says which files it lacks for an https server without a certificate (exit 2), and fails a node certificate on a user route with the rule', async () => {
    const bare = await drover(['status', '--context', 'bare'], { DROVER_CONFIG: config });
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('needs a client certificate: give --ca, --cert, --key');
    const n1 = issuedPaths(join(h.dir, 'ca'), 'node', 'n1');
    const node = await drover(['status'], { DROVER_CONFIG: join(h.dir, 'none.yml'), DROVER_CONTROL: h.url, DROVER_CA: caPaths(join(h.dir, 'ca')).cert, DROVER_CERT: n1.certPath, DROVER_KEY: n1.keyPath });
    expect(node.code).toBe(1);
    expect(node.stderr).toContain('rule user-only');
  });

  it('makes a CA, certificates and revokes one with drover ca, none of which needs a control service', async () => {
    const dir = join(h.dir, 'operator-ca');
    expect((await drover(['ca', 'init', '--dir', dir], {})).code).toBe(0);
    const node = await drover(['ca', 'node', 'n7', '--dir', dir], {});
    expect(node.stdout).toContain(`${dir}/nodes/n7.key`);
    expect(node.stdout).not.toContain('PRIVATE KEY');
    expect((await drover(['ca', 'revoke', 'node/n7', '--dir', dir], {})).code).toBe(0);
    expect((await drover(['ca', 'list', '--dir', dir], {})).stdout).toMatch(/node\s+n7\s+[0-9a-f]+\s+\S+\s+\d{4}-/);
    const again = await drover(['ca', 'init', '--dir', dir], {});
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already holds a cluster CA');
  });

  it('issues a node certificate naming its addresses and a scraper certificate that the API refuses', async () => {
    const dir = join(h.dir, 'operator-ca-2');
    expect((await drover(['ca', 'init', '--dir', dir], {})).code).toBe(0);
    expect((await drover(['ca', 'node', 'n8', '10.0.0.8', 'n8.example', '--dir', dir], {})).code).toBe(0);
    const cert = new X509Certificate(await readFile(issuedPaths(dir, 'node', 'n8').certPath, 'utf8'));
    expect(cert.subjectAltName).toBe('IP Address:10.0.0.8, DNS:n8.example');
    expect((await drover(['ca', 'node', 'n9', '10.0.0.999', '--dir', dir], {})).stderr).toContain('not an IPv4 address or DNS name: "10.0.0.999"');
    const scraper = await drover(['ca', 'metrics', 'prometheus', '--dir', dir], {});
    expect(scraper.stdout).toContain(`${dir}/metrics/prometheus.crt`);
    expect((await drover(['ca', 'list', '--dir', dir], {})).stdout).toMatch(/metrics\s+prometheus\s+/);
    // The test's control service trusts its own CA: a scraper certificate of that CA gets no API role.
    const own = await issue(join(h.dir, 'ca'), { role: 'metrics', name: 'scraper' });
    const refused = await drover(['status'], { DROVER_CONFIG: join(h.dir, 'none.yml'), DROVER_CONTROL: h.url, DROVER_CA: caPaths(join(h.dir, 'ca')).cert, DROVER_CERT: own.paths.certPath, DROVER_KEY: own.paths.keyPath });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('carries no drover role');
  });
});

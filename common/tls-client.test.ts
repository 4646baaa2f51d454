import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PemPaths } from './certificates.ts';
import { caPaths, initCa, issue } from './cluster-ca.ts';
import { readTlsIdentity } from './tls-client.ts';

let dir: string;
let ca: string;
let alice: PemPaths;
let bob: PemPaths;
let notPem: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drover-tls-client-'));
  ca = caPaths(join(dir, 'ca')).cert;
  await initCa(join(dir, 'ca'));
  alice = (await issue(join(dir, 'ca'), { role: 'user', name: 'alice' })).paths;
  bob = (await issue(join(dir, 'ca'), { role: 'user', name: 'bob' })).paths;
  notPem = join(dir, 'hostname');
  await writeFile(notPem, 'lab-7\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function refusal(files: { ca: string; cert: string; key: string }): string {
  try {
    readTlsIdentity(files);
  } catch (err) {
    expect(err).toMatchObject({ code: 'DROVER_CONFIG_INVALID' });
    return (err as Error).message;
  }
  throw new Error('readTlsIdentity accepted the files');
}

describe('readTlsIdentity (--ca, --cert, --key)', () => {
  it('reads a CA certificate, a certificate and its key', () => {
    expect(readTlsIdentity({ ca, cert: alice.certPath, key: alice.keyPath }).cert).toContain('BEGIN CERTIFICATE');
  });

  it('says in words why a file cannot be read', () => {
    expect(refusal({ ca: join(dir, 'absent.crt'), cert: alice.certPath, key: alice.keyPath })).toBe(`the CA certificate ${join(dir, 'absent.crt')} cannot be read: no such file`);
    expect(refusal({ ca, cert: dir, key: alice.keyPath })).toBe(`the certificate ${dir} cannot be read: it is a directory`);
  });

  it('names the file that is not a certificate or not a key, instead of failing the connection later', () => {
    expect(refusal({ ca: notPem, cert: alice.certPath, key: alice.keyPath })).toBe(`the CA certificate ${notPem} is not a PEM certificate (-----BEGIN CERTIFICATE-----)`);
    expect(refusal({ ca, cert: alice.keyPath, key: alice.keyPath })).toBe(`the certificate ${alice.keyPath} is not a PEM certificate (-----BEGIN CERTIFICATE-----)`);
    expect(refusal({ ca, cert: alice.certPath, key: alice.certPath })).toBe(`the key ${alice.certPath} is not a PEM private key`);
  });

  it("names a key that is another certificate's", () => {
    expect(refusal({ ca, cert: alice.certPath, key: bob.keyPath })).toBe(`the key ${bob.keyPath} is not the key of the certificate ${alice.certPath}`);
  });
});

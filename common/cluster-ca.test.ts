import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { caPaths, initCa, issue, listIssued, parseRevoked, revoke } from './cluster-ca.ts';
import { clientConfigPath, pickContext, readClientConfig, removeContext, saveContext } from './client-config.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drover-ca-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the cluster CA directory (drover ca)', () => {
  it('makes a CA whose key is 0600, and never replaces it', async () => {
    const paths = await initCa(join(dir, 'ca'));
    expect((await stat(paths.key)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'ca'))).mode & 0o777).toBe(0o700);
    await expect(initCa(join(dir, 'ca'))).rejects.toMatchObject({ code: 'DROVER_CA_EXISTS' });
  });

  it('puts the role in the subject O and the name in the CN, and the control service\'s addresses in its SANs', async () => {
    const ca = join(dir, 'ca');
    await initCa(ca);
    const node = await issue(ca, { role: 'node', name: 'n1' });
    const user = await issue(ca, { role: 'user', name: 'alice' });
    const control = await issue(ca, { role: 'control', name: 'control', ipAddresses: ['10.0.0.5'], dnsNames: ['control.example'] });
    const subject = async (p: string) => new X509Certificate(await readFile(p)).subject.split('\n').sort();
    expect(await subject(node.paths.certPath)).toEqual(['CN=n1', 'O=drover-node']);
    expect(await subject(user.paths.certPath)).toEqual(['CN=alice', 'O=drover-user']);
    expect(new X509Certificate(await readFile(control.paths.certPath)).subjectAltName).toBe('IP Address:10.0.0.5, DNS:control.example');
    expect((await stat(node.paths.keyPath)).mode & 0o777).toBe(0o600);
    expect((await listIssued(ca)).map((e) => `${e.role}/${e.name}`)).toEqual(['node/n1', 'user/alice', 'control/control']);
  });

  it('refuses a name that cannot be a certificate CN, naming it', async () => {
    const ca = join(dir, 'ca');
    await initCa(ca);
    await expect(issue(ca, { role: 'node', name: 'n1,O=drover-user' })).rejects.toMatchObject({ code: 'DROVER_TLS_CERT_FAILED', message: expect.stringContaining('n1,O=drover-user') });
    await expect(issue(join(dir, 'none'), { role: 'node', name: 'n1' })).rejects.toMatchObject({ code: 'DROVER_CA_MISSING' });
  });

  it('revokes by role/name or serial into revoked.txt, which parses back to the serials', async () => {
    const ca = join(dir, 'ca');
    await initCa(ca);
    const n1 = await issue(ca, { role: 'node', name: 'n1' });
    const n2 = await issue(ca, { role: 'node', name: 'n2' });
    expect((await revoke(ca, 'node/n1')).map((e) => e.serial)).toEqual([n1.entry.serial]);
    await revoke(ca, n2.entry.serial.toUpperCase());
    expect(parseRevoked(await readFile(caPaths(ca).revoked, 'utf8'))).toEqual(new Set([n1.entry.serial, n2.entry.serial]));
    await expect(revoke(ca, 'node/n1')).rejects.toMatchObject({ code: 'DROVER_CA_UNKNOWN_CERTIFICATE' });
  });
});

describe("the CLI's config file (contexts)", () => {
  it('adds, picks and removes contexts; the current one by default, an unknown name refused', async () => {
    const path = clientConfigPath({ DROVER_CONFIG: join(dir, 'config.yml') });
    await saveContext(path, { name: 'demo', server: 'https://127.0.0.1:4523', ca: '/ca', cert: '/c', key: '/k' }, true);
    await saveContext(path, { name: 't4', server: 'https://127.0.4.11:4523' }, false);
    const config = await readClientConfig(path);
    expect(pickContext(config, undefined, path)?.name).toBe('demo');
    expect(pickContext(config, 't4', path)?.server).toBe('https://127.0.4.11:4523');
    expect(() => pickContext(config, 'nope', path)).toThrow(expect.objectContaining({ code: 'DROVER_CONFIG_INVALID' }));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await removeContext(path, 'demo');
    expect(pickContext(await readClientConfig(path), undefined, path)).toBeNull();
    expect(clientConfigPath({ HOME: '/home/x' })).toBe('/home/x/.config/drover/config.yml');
  });
});

import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { createCa, ensurePemPair, issueCertificate, type PemPair } from './certificates.ts';

/** One mutual-TLS exchange on 127.0.0.1: resolves with what each side saw, or the client's error. */
async function handshake(server: PemPair & { ca: string }, client: PemPair & { ca: string }): Promise<{ clientAuthorized: boolean; peerCn: string } | Error> {
  const listener = createServer({ cert: server.cert, key: server.key, ca: server.ca, requestCert: true, rejectUnauthorized: true }, (socket: TLSSocket) => {
    socket.end(String((socket.getPeerCertificate().subject as { CN?: string }).CN));
  });
  listener.on('tlsClientError', () => undefined);
  await new Promise<void>((done) => listener.listen(0, '127.0.0.1', done));
  const port = (listener.address() as { port: number }).port;
  try {
    return await new Promise((done) => {
      const socket = connect({ host: '127.0.0.1', port, ca: client.ca, cert: client.cert, key: client.key });
      let body = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (body += chunk));
      socket.on('end', () => done({ clientAuthorized: socket.authorized, peerCn: body }));
      socket.on('error', (err) => done(err));
    });
  } finally {
    listener.close();
  }
}

describe('certificates', () => {
  let dir: string | null = null;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = null;
  });

  it('makes a self-signed P-256 CA that can sign and nothing else', async () => {
    const ca = await createCa('drover test cluster CA');
    const cert = new X509Certificate(ca.cert);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=drover test cluster CA');
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(ca.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(new Date(cert.validTo).getTime() - Date.now()).toBeGreaterThan(3649 * 86_400_000);
  });

  it('issues a certificate for both ends of mutual TLS, with the address as an IP SAN, that a TLS handshake accepts', async () => {
    const ca = await createCa('drover test cluster CA');
    const node1 = await issueCertificate({ ca, commonName: 'n1', ipAddresses: ['127.0.0.1'] });
    const node2 = await issueCertificate({ ca, commonName: 'n2', ipAddresses: ['127.0.0.1'] });
    const cert = new X509Certificate(node1.cert);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(new X509Certificate(ca.cert))).toBe(true);
    expect(cert.verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
    expect(cert.subjectAltName).toBe('IP Address:127.0.0.1');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(await handshake({ ...node2, ca: ca.cert }, { ...node1, ca: ca.cert })).toEqual({ clientAuthorized: true, peerCn: 'n1' });
  });

  it('refuses a peer whose certificate another CA signed', async () => {
    const ca = await createCa('drover test cluster CA');
    const stranger = await createCa('someone else');
    const server = await issueCertificate({ ca, commonName: 'n1', ipAddresses: ['127.0.0.1'] });
    const intruder = await issueCertificate({ ca: stranger, commonName: 'n2', ipAddresses: ['127.0.0.1'], usage: 'client' });
    const result = await handshake({ ...server, ca: ca.cert }, { ...intruder, ca: ca.cert });
    // The server rejects the client's certificate: the client sees the connection fail or end empty.
    expect(result instanceof Error || result.peerCn === '').toBe(true);
  });

  it('limits the extended key usage to what was asked for', async () => {
    const ca = await createCa('drover test cluster CA');
    const server = await issueCertificate({ ca, commonName: 'control', dnsNames: ['localhost'], usage: 'server' });
    expect(new X509Certificate(server.cert).keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(new X509Certificate(server.cert).subjectAltName).toBe('DNS:localhost');
  });

  it('refuses names that are not a plain common name, and addresses that are not IPs', async () => {
    await expect(createCa('evil, O=other')).rejects.toMatchObject({ code: 'DROVER_TLS_CERT_FAILED' });
    const ca = await createCa('drover test cluster CA');
    await expect(issueCertificate({ ca, commonName: 'n1', ipAddresses: ['example.com'] })).rejects.toMatchObject({ code: 'DROVER_TLS_CERT_FAILED' });
    await expect(issueCertificate({ ca: { cert: ca.cert, key: 'not a key' }, commonName: 'n1' })).rejects.toMatchObject({ code: 'DROVER_TLS_CERT_FAILED' });
  });

  it('writes the key and certificate 0600 once and keeps them on the next call', async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-certs-'));
    const paths = { certPath: join(dir, 'ca', 'ca.crt'), keyPath: join(dir, 'ca', 'ca.key') };
    const first = await ensurePemPair(paths, () => createCa('drover test cluster CA'));
    expect((await stat(paths.keyPath)).mode & 0o777).toBe(0o600);
    expect((await stat(paths.certPath)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'ca'))).mode & 0o777).toBe(0o700);
    const second = await ensurePemPair(paths, () => createCa('another'));
    expect(second).toEqual(first);
  });
});

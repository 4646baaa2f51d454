/**
 * Certificates for the tls transport, made with openssl (through the agent's CommandRunner):
 * a cluster CA (`cluster.crt` + `cluster.key`) and, per node, a P-256 key and a certificate
 * signed by it for both serverAuth and clientAuth, with the node's address as an IP SAN.
 * For the local cluster and tests; the operator-facing CA commands come with the security work.
 */
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DroverError } from '#common/errors.ts';
import { execaRunner, type CommandRunner } from '../zfs/command.ts';

export interface TlsIdentity {
  /** PEM */
  ca: string;
  cert: string;
  key: string;
}

async function openssl(runner: CommandRunner, args: string[]): Promise<void> {
  const r = await runner.run('openssl', args, { timeoutMs: 30_000 });
  if (r.exitCode !== 0) {
    throw new DroverError('DROVER_TLS_CERT_FAILED', `openssl ${args[0]} failed: ${r.stderr.trim().split('\n')[0]}`, { detail: { stderr: r.stderr.slice(0, 2000) } });
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/** A self-signed cluster CA in `dir` (`cluster.crt`, `cluster.key`); kept when present. */
export async function ensureClusterCa(dir: string, runner: CommandRunner = execaRunner): Promise<{ certPath: string; keyPath: string }> {
  const certPath = join(dir, 'cluster.crt');
  const keyPath = join(dir, 'cluster.key');
  if ((await exists(certPath)) && (await exists(keyPath))) return { certPath, keyPath };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await openssl(runner, [
    'req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-keyout', keyPath, '-out', certPath, '-days', '3650', '-subj', '/CN=drover cluster CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { certPath, keyPath };
}

export interface NodeCertificateRequest {
  ca: { certPath: string; keyPath: string };
  /** Where `node.key` and `node.crt` go. */
  dir: string;
  /** The node's name or uuid: the certificate's CN. */
  commonName: string;
  /** The node's transfer address (an IP SAN: clients check it). */
  address: string;
}

/** Issues (or reuses) the node's key and certificate; returns the PEMs. */
export async function ensureNodeCertificate(request: NodeCertificateRequest, runner: CommandRunner = execaRunner): Promise<TlsIdentity> {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(request.commonName) || !/^[0-9.]{7,15}$/.test(request.address)) {
    throw new DroverError('DROVER_TLS_CERT_FAILED', 'node name or address unusable in a certificate');
  }
  const keyPath = join(request.dir, 'node.key');
  const certPath = join(request.dir, 'node.crt');
  if (!(await exists(certPath)) || !(await exists(keyPath))) {
    await mkdir(request.dir, { recursive: true, mode: 0o700 });
    const csr = join(request.dir, 'node.csr');
    const ext = join(request.dir, 'node.ext');
    await openssl(runner, ['req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-keyout', keyPath, '-out', csr, '-subj', `/CN=${request.commonName}`]);
    await writeFile(ext, `subjectAltName=IP:${request.address}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n`);
    await openssl(runner, [
      'x509', '-req', '-in', csr, '-CA', request.ca.certPath, '-CAkey', request.ca.keyPath,
      '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', '825', '-sha256', '-extfile', ext, '-out', certPath,
    ]);
    await rm(csr, { force: true });
    await rm(ext, { force: true });
  }
  const [ca, cert, key] = await Promise.all([readFile(request.ca.certPath, 'utf8'), readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  return { ca, cert, key };
}

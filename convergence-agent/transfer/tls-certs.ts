/**
 * Certificates for the tls transport, from drover's one generator (#common/certificates.ts):
 * a cluster CA (`cluster.crt` + `cluster.key`) and, per node, a P-256 key and a certificate
 * signed by it for both serverAuth and clientAuth, with the node's address as an IP SAN.
 * For the local cluster and tests; the operator-facing CA commands come with the security work.
 */
import { join } from 'node:path';
import { createCa, ensurePemPair, issueCertificate, readPemPair } from '#common/certificates.ts';
import { DroverError } from '#common/errors.ts';

export interface TlsIdentity {
  /** PEM */
  ca: string;
  cert: string;
  key: string;
}

/** A self-signed cluster CA in `dir` (`cluster.crt`, `cluster.key`, 0600); kept when present. */
export async function ensureClusterCa(dir: string): Promise<{ certPath: string; keyPath: string }> {
  const paths = { certPath: join(dir, 'cluster.crt'), keyPath: join(dir, 'cluster.key') };
  await ensurePemPair(paths, () => createCa('drover cluster CA'));
  return paths;
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

/**
 * Issues (or reuses) the node's key and certificate; returns the PEMs.
 * @throws DROVER_TLS_CERT_FAILED when the name or address cannot go in a certificate, or the CA is unusable
 */
export async function ensureNodeCertificate(request: NodeCertificateRequest): Promise<TlsIdentity> {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(request.commonName) || !/^[0-9.]{7,15}$/.test(request.address)) {
    throw new DroverError('DROVER_TLS_CERT_FAILED', 'node name or address unusable in a certificate');
  }
  const ca = await readPemPair(request.ca);
  const node = await ensurePemPair({ certPath: join(request.dir, 'node.crt'), keyPath: join(request.dir, 'node.key') }, () =>
    issueCertificate({ ca, commonName: request.commonName, ipAddresses: [request.address], usage: 'both' }),
  );
  return { ca: ca.cert, cert: node.cert, key: node.key };
}

/**
 * drover's one certificate generator (the @peculiar/x509 adapter): a self-signed CA, and
 * certificates it signs for servers, clients or both, all on P-256 keys with ECDSA-SHA256,
 * made in process over WebCrypto. Keys are PKCS#8 PEM; files are written 0600.
 *
 * Used by the cluster CA (common/cluster-ca.ts: `drover ca`, the local cluster) and the tls
 * transport's node certificates.
 */
// @peculiar/x509 describes its ASN.1 with decorators that need the metadata polyfill,
// loaded before the library itself.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { access, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DroverError } from './errors.ts';

x509.cryptoProvider.set(globalThis.crypto);

const EC: webcrypto.EcKeyGenParams & webcrypto.EcKeyImportParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DAY_MS = 86_400_000;

/** A certificate and its private key, both PEM. */
export interface PemPair {
  cert: string;
  key: string;
}

export type CertificateUsage = 'server' | 'client' | 'both';

export interface IssueRequest {
  /** The signing CA (from `createCa`, or read back from its files). */
  ca: PemPair;
  /** The subject's CN: letters, digits, `_ . -`, at most 64. */
  commonName: string;
  /** The subject's O (drover puts the role there: common/identity.ts); same characters as the CN. */
  organization?: string;
  /** IP subject alternative names (IPv4 or IPv6): what clients check against. */
  ipAddresses?: string[];
  /** DNS subject alternative names. */
  dnsNames?: string[];
  /** Extended key usage; default 'both' (serverAuth and clientAuth, for mutual TLS). */
  usage?: CertificateUsage;
  /** Validity in days from now; default 825. */
  days?: number;
}

function fail(message: string, cause?: unknown): never {
  throw new DroverError('DROVER_TLS_CERT_FAILED', message, cause === undefined ? {} : { cause });
}

function checkCommonName(name: string): void {
  // Also keeps the name out of the distinguished-name syntax (no commas, equals, quotes).
  if (!/^[A-Za-z0-9_. -]{1,64}$/.test(name)) fail(`'${name}' is not usable as a certificate's common name`);
}

/** A positive serial number of 16 random bytes, hex. */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  if (!(Number.isInteger(days) && days > 0)) fail(`validity must be a whole number of days, not ${days}`);
  const now = Date.now();
  // A minute back: a peer whose clock is a little behind still accepts a fresh certificate.
  return { notBefore: new Date(now - 60_000), notAfter: new Date(now + days * DAY_MS) };
}

async function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await globalThis.crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await globalThis.crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** Any PEM private key openssl writes for P-256 (PKCS#8 or SEC1), as a signing key. */
async function importSigningKey(pem: string): Promise<webcrypto.CryptoKey> {
  try {
    const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
    return await globalThis.crypto.subtle.importKey('pkcs8', der, EC, false, ['sign']);
  } catch (err) {
    return fail(`the CA key is not a P-256 private key: ${(err as Error).message}`, err);
  }
}

/**
 * A new self-signed CA: CN `commonName`, CA:TRUE (critical), keyCertSign and cRLSign
 * (critical), valid `days` (default 3650). Pure apart from randomness.
 * @throws DROVER_TLS_CERT_FAILED for an unusable name or validity
 */
export async function createCa(commonName: string, days = 3650): Promise<PemPair> {
  checkCommonName(commonName);
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    ...validity(days),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

/**
 * A new key and a certificate for it signed by `request.ca`: CA:FALSE (critical),
 * digitalSignature (critical), the extended key usage asked for and the given SANs.
 * @throws DROVER_TLS_CERT_FAILED for an unusable name, address, validity or CA
 */
export async function issueCertificate(request: IssueRequest): Promise<PemPair> {
  checkCommonName(request.commonName);
  if (request.organization !== undefined) checkCommonName(request.organization);
  const ips = request.ipAddresses ?? [];
  const dns = request.dnsNames ?? [];
  for (const ip of ips) if (!/^[0-9.]{7,15}$|^[0-9a-fA-F:]{2,39}$/.test(ip)) fail(`'${ip}' is not an IP address`);
  for (const name of dns) if (!/^[A-Za-z0-9.-]{1,253}$/.test(name)) fail(`'${name}' is not a DNS name`);
  let caCert: x509.X509Certificate;
  try {
    caCert = new x509.X509Certificate(request.ca.cert);
  } catch (err) {
    return fail(`the CA certificate cannot be read: ${(err as Error).message}`, err);
  }
  const signingKey = await importSigningKey(request.ca.key);
  const keys = await newKeys();
  const usage = request.usage ?? 'both';
  const eku = [
    ...(usage === 'client' ? [] : [x509.ExtendedKeyUsage.serverAuth]),
    ...(usage === 'server' ? [] : [x509.ExtendedKeyUsage.clientAuth]),
  ];
  const sans = [...ips.map((value) => ({ type: 'ip' as const, value })), ...dns.map((value) => ({ type: 'dns' as const, value }))];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: request.organization === undefined ? `CN=${request.commonName}` : `CN=${request.commonName}, O=${request.organization}`,
    issuer: caCert.subject,
    ...validity(request.days ?? 825),
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(eku),
      ...(sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

export interface PemPaths {
  certPath: string;
  keyPath: string;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Writes both files 0600 (their directory 0700 when created); the key first, so a cert never names a missing key. */
export async function writePemPair(paths: PemPaths, pair: PemPair): Promise<void> {
  await mkdir(dirname(paths.keyPath), { recursive: true, mode: 0o700 });
  await mkdir(dirname(paths.certPath), { recursive: true, mode: 0o700 });
  for (const [path, text] of [
    [paths.keyPath, pair.key],
    [paths.certPath, pair.cert],
  ] as const) {
    await writeFile(path, text, { mode: 0o600 });
    await chmod(path, 0o600); // writeFile's mode applies only to a new file
  }
}

export async function readPemPair(paths: PemPaths): Promise<PemPair> {
  const [cert, key] = await Promise.all([readFile(paths.certPath, 'utf8'), readFile(paths.keyPath, 'utf8')]);
  return { cert, key };
}

/**
 * The pair at `paths`, made by `make` and written when either file is missing. Idempotent:
 * an existing pair is kept as it is (certificates already handed out stay valid).
 */
export async function ensurePemPair(paths: PemPaths, make: () => Promise<PemPair>): Promise<PemPair> {
  if ((await exists(paths.certPath)) && (await exists(paths.keyPath))) return readPemPair(paths);
  const pair = await make();
  await writePemPair(paths, pair);
  return pair;
}

/** What drover reads back from a certificate (`drover ca list`, the revocation check). */
export interface CertificateInfo {
  /** Lower-case hex, no leading zeros (as node:tls reports `serialNumber`, lower-cased). */
  serial: string;
  commonName: string;
  organization: string | null;
  /** SHA-256 of the DER, lower-case hex. */
  fingerprint: string;
  notAfter: Date;
}

/** Normalizes a serial number (hex, any case, leading zeros) for comparison. */
export function normalSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '');
}

/**
 * Reads a PEM certificate's serial, subject CN and O, fingerprint and expiry.
 * @throws DROVER_TLS_CERT_FAILED when it is not a certificate
 */
export async function certificateInfo(pem: string): Promise<CertificateInfo> {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(pem);
  } catch (err) {
    return fail(`not a PEM certificate: ${(err as Error).message}`, err);
  }
  const name = new x509.Name(cert.subject);
  const fingerprint = Buffer.from(await cert.getThumbprint('SHA-256')).toString('hex');
  return {
    serial: normalSerial(cert.serialNumber),
    commonName: name.getField('CN')[0] ?? '',
    organization: name.getField('O')[0] ?? null,
    fingerprint,
    notAfter: cert.notAfter,
  };
}

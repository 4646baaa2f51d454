/**
 * The cluster CA's directory (docs/DESIGN.md §23): what `drover ca` and the local cluster
 * keep on the operator's side. The CA key never leaves it; the control service gets the CA
 * certificate, its own certificate and the revoked list only.
 *
 *   <dir>/ca.crt  ca.key             the CA (key 0600)
 *   <dir>/control/control.crt|key    the control service's (server) certificate
 *   <dir>/nodes/<name>.crt|key       a node's (client and transfer) certificate: O=drover-node, CN=<name>
 *   <dir>/users/<name>.crt|key       an API user's certificate: O=drover-user, CN=<name>
 *   <dir>/metrics/<name>.crt|key     a scraper's certificate (/metrics only): O=drover-metrics, CN=<name>
 *   <dir>/issued.json                every certificate issued: serial, role, name, expiry, revoked_at
 *   <dir>/revoked.txt                revoked serials, one a line: the control service's `--revoked` file
 *
 * Every file is written 0600 in 0700 directories; no key is ever logged or printed.
 */
import { access, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { certificateInfo, createCa, issueCertificate, normalSerial, readPemPair, writePemPair, type PemPair, type PemPaths } from './certificates.ts';
import { DroverError } from './errors.ts';
import { CERT_NAME, ROLE_ORGANIZATION, type Role } from './identity.ts';

export interface CaPaths {
  dir: string;
  cert: string;
  key: string;
  issued: string;
  revoked: string;
}

export function caPaths(dir: string): CaPaths {
  return { dir, cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key'), issued: join(dir, 'issued.json'), revoked: join(dir, 'revoked.txt') };
}

const FOLDER: Record<Role, string> = { control: 'control', node: 'nodes', user: 'users', metrics: 'metrics' };

/** Where the certificate of `role` named `name` lives in the CA directory. */
export function issuedPaths(dir: string, role: Role, name: string): PemPaths {
  const base = join(dir, FOLDER[role], name);
  return { certPath: `${base}.crt`, keyPath: `${base}.key` };
}

const IssuedEntry = z
  .object({
    serial: z.string(),
    role: z.enum(['control', 'node', 'user', 'metrics']),
    name: z.string(),
    fingerprint: z.string(),
    not_after: z.string(),
    cert_file: z.string(),
    revoked_at: z.string().optional(),
  })
  .strict();
export type IssuedEntry = z.infer<typeof IssuedEntry>;
const IssuedFile = z.array(IssuedEntry);

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Writes a file 0600 through a temp file and a rename, so a reader never sees half of it. */
async function writePrivate(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, text, { mode: 0o600 });
  await rename(temp, path);
}

/**
 * Makes a new CA in `dir` (`drover ca init`).
 * @throws DROVER_CA_EXISTS when `dir` already holds one (it is never replaced: every certificate it signed would stop working)
 */
export async function initCa(dir: string, commonName = 'drover cluster CA'): Promise<CaPaths> {
  const paths = caPaths(dir);
  if ((await exists(paths.cert)) || (await exists(paths.key))) {
    throw new DroverError('DROVER_CA_EXISTS', `${dir} already holds a cluster CA (ca.crt/ca.key); it is kept as it is`, { detail: { dir } });
  }
  await writePemPair({ certPath: paths.cert, keyPath: paths.key }, await createCa(commonName));
  await writePrivate(paths.issued, '[]\n');
  await writePrivate(paths.revoked, '');
  return paths;
}

/** The CA in `dir`, made when missing (the local cluster's: idempotent). */
export async function ensureCa(dir: string, commonName: string): Promise<CaPaths> {
  const paths = caPaths(dir);
  if (!((await exists(paths.cert)) && (await exists(paths.key)))) return initCa(dir, commonName);
  if (!(await exists(paths.issued))) await writePrivate(paths.issued, '[]\n');
  if (!(await exists(paths.revoked))) await writePrivate(paths.revoked, '');
  return paths;
}

async function readCa(dir: string): Promise<PemPair> {
  const paths = caPaths(dir);
  if (!((await exists(paths.cert)) && (await exists(paths.key)))) {
    throw new DroverError('DROVER_CA_MISSING', `${dir} holds no cluster CA: run drover ca init${dir ? ` --dir ${dir}` : ''} first`, { detail: { dir } });
  }
  return readPemPair({ certPath: paths.cert, keyPath: paths.key });
}

/** Every certificate the CA in `dir` issued (`drover ca list`), oldest first. */
export async function listIssued(dir: string): Promise<IssuedEntry[]> {
  const paths = caPaths(dir);
  await readCa(dir);
  const text = await readFile(paths.issued, 'utf8').catch(() => '[]');
  return IssuedFile.parse(JSON.parse(text));
}

export interface IssueOptions {
  role: Role;
  name: string;
  /** Subject alternative names a client checks (the control service's addresses). */
  ipAddresses?: string[];
  dnsNames?: string[];
  days?: number;
}

/**
 * Issues a certificate (`drover ca control|node|user`) and writes it with its key under
 * `dir` (issuedPaths). Issuing again for the same role and name replaces the files with a
 * new serial; the old one stays valid until revoked.
 * @throws DROVER_CA_MISSING, DROVER_TLS_CERT_FAILED (a name or address it cannot carry)
 */
export async function issue(dir: string, options: IssueOptions): Promise<{ paths: PemPaths; entry: IssuedEntry }> {
  if (!CERT_NAME.test(options.name)) {
    throw new DroverError('DROVER_TLS_CERT_FAILED', `'${options.name}' is not a usable ${options.role} name: letters, digits, '_', '.', '-', at most 64, starting with a letter or digit`, {
      detail: { field: 'name', name: options.name },
    });
  }
  const ca = await readCa(dir);
  const pair = await issueCertificate({
    ca,
    commonName: options.name,
    organization: ROLE_ORGANIZATION[options.role],
    // The control service is also a client: of the agents' logs endpoints (docs/DESIGN.md §27).
    usage: options.role === 'user' || options.role === 'metrics' ? 'client' : 'both',
    ...(options.ipAddresses ? { ipAddresses: options.ipAddresses } : {}),
    ...(options.dnsNames ? { dnsNames: options.dnsNames } : {}),
    ...(options.days ? { days: options.days } : {}),
  });
  const paths = issuedPaths(dir, options.role, options.name);
  await writePemPair(paths, pair);
  const info = await certificateInfo(pair.cert);
  const entry: IssuedEntry = {
    serial: info.serial,
    role: options.role,
    name: options.name,
    fingerprint: info.fingerprint,
    not_after: info.notAfter.toISOString(),
    cert_file: paths.certPath,
  };
  const issued = await listIssued(dir);
  await writePrivate(caPaths(dir).issued, `${JSON.stringify([...issued, entry], null, 2)}\n`);
  return { paths, entry };
}

/**
 * The certificate of `role`/`name` when its files exist, else a new one (the local
 * cluster's: idempotent, so `cluster up` repairs without reissuing).
 */
export async function ensureIssued(dir: string, options: IssueOptions): Promise<PemPaths> {
  const paths = issuedPaths(dir, options.role, options.name);
  if ((await exists(paths.certPath)) && (await exists(paths.keyPath))) return paths;
  return (await issue(dir, options)).paths;
}

/**
 * Revokes certificates (`drover ca revoke`): `which` is a serial, or `<role>/<name>`
 * (every unrevoked certificate of that name), or a name that only one role uses. Rewrites
 * `revoked.txt`, which the control service reloads.
 * @returns the entries revoked now
 * @throws DROVER_CA_UNKNOWN_CERTIFICATE when nothing matches
 */
export async function revoke(dir: string, which: string, now = new Date()): Promise<IssuedEntry[]> {
  const issued = await listIssued(dir);
  const [role, name] = which.includes('/') ? (which.split('/', 2) as [string, string]) : [null, which];
  const matches = issued.filter((e) => e.revoked_at === undefined && (normalSerial(which) === e.serial || (e.name === name && (role === null || e.role === role))));
  if (matches.length === 0) {
    throw new DroverError('DROVER_CA_UNKNOWN_CERTIFICATE', `no unrevoked certificate issued by the CA in ${dir} matches '${which}' (drover ca list shows them)`, { detail: { which } });
  }
  const roles = new Set(matches.map((e) => e.role));
  if (role === null && roles.size > 1 && !matches.some((e) => e.serial === normalSerial(which))) {
    throw new DroverError('DROVER_CA_UNKNOWN_CERTIFICATE', `'${which}' names certificates of several roles (${[...roles].join(', ')}): say which, e.g. node/${which}`, { detail: { which } });
  }
  const stamp = now.toISOString();
  const next = issued.map((e) => (matches.includes(e) ? { ...e, revoked_at: stamp } : e));
  const paths = caPaths(dir);
  await writePrivate(paths.issued, `${JSON.stringify(next, null, 2)}\n`);
  await writePrivate(paths.revoked, revokedText(next));
  return matches.map((e) => ({ ...e, revoked_at: stamp }));
}

function revokedText(entries: IssuedEntry[]): string {
  const lines = entries.filter((e) => e.revoked_at !== undefined).map((e) => `${e.serial} ${e.role}/${e.name} ${e.revoked_at}`);
  return lines.length === 0 ? '' : `# serial role/name revoked-at (drover ca revoke)\n${lines.join('\n')}\n`;
}

/** The serials of a revoked list (`revoked.txt`: the first word of each line; `#` starts a comment). */
export function parseRevoked(text: string): Set<string> {
  const serials = new Set<string>();
  for (const line of text.split('\n')) {
    const word = line.replace(/#.*/, '').trim().split(/\s+/)[0];
    if (word && /^[0-9a-fA-F:]+$/.test(word)) serials.add(normalSerial(word.replaceAll(':', '')));
  }
  return serials;
}

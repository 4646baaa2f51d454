/**
 * The API client's mutual-TLS transport (docs/DESIGN.md §23): a `fetch` over node:https
 * with the cluster CA and a client certificate. The global fetch cannot take a client
 * certificate without undici's dispatcher, which Node does not expose; this adapter
 * answers a standard `Response` so the client above reads both alike.
 *
 * The server is checked against the cluster CA only (no system roots) and by the address
 * or name the URL gives, which its certificate must carry as a subject alternative name.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { Readable } from 'node:stream';
import { DroverError } from './errors.ts';

/** PEM text of the cluster CA and of this client's certificate and key. */
export interface TlsIdentity {
  ca: string;
  cert: string;
  key: string;
}

/** Paths of the three PEM files (a context of config.yml, a component's configuration). */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

const TITLE = { ca: 'CA certificate', cert: 'certificate', key: 'key' } as const;
const WHY: Record<string, string> = { ENOENT: 'no such file', EISDIR: 'it is a directory', EACCES: 'permission denied' };

/**
 * Reads the three files and checks that they are what they are said to be: two PEM
 * certificates and the PEM private key of the second. A wrong file is named here rather than
 * surfacing later as a connection that "cannot reach" the control service.
 * @throws DROVER_CONFIG_INVALID naming the file that cannot be read, or is not a certificate
 *   or key, or the key that does not belong to the certificate
 */
export function readTlsIdentity(files: TlsFiles): TlsIdentity {
  const bad = (what: keyof TlsFiles, why: string, err?: unknown) =>
    new DroverError('DROVER_CONFIG_INVALID', `the ${TITLE[what]} ${files[what]} ${why}`, { detail: { field: what, file: files[what] }, ...(err === undefined ? {} : { cause: err }) });
  const read = (what: keyof TlsFiles) => {
    try {
      return readFileSync(files[what], 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw bad(what, `cannot be read: ${(code !== undefined && WHY[code]) || (code ?? String(err))}`, err);
    }
  };
  const identity = { ca: read('ca'), cert: read('cert'), key: read('key') };
  const certificate = (what: 'ca' | 'cert') => {
    try {
      return new X509Certificate(identity[what]);
    } catch (err) {
      throw bad(what, 'is not a PEM certificate (-----BEGIN CERTIFICATE-----)', err);
    }
  };
  certificate('ca');
  const cert = certificate('cert');
  let key: KeyObject;
  try {
    key = createPrivateKey(identity.key);
  } catch (err) {
    throw bad('key', 'is not a PEM private key', err);
  }
  if (!cert.checkPrivateKey(key)) throw bad('key', `is not the key of the certificate ${files.cert}`);
  return identity;
}

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string | null; signal: AbortSignal | null }) => Promise<Response>;

/**
 * A fetch that presents `identity` and trusts only its CA. Keeps connections alive (the
 * agents' long-polls and reports reuse them). Errors are thrown as fetch throws them: a
 * TypeError whose `cause` carries the low-level `code` (ECONNREFUSED, a TLS verify code).
 */
export function tlsFetch(identity: TlsIdentity): FetchLike {
  const agent = new Agent({ ca: identity.ca, cert: identity.cert, key: identity.key, keepAlive: true, minVersion: 'TLSv1.3', maxCachedSessions: 16 });
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const fail = (err: Error) => {
        if (err.name === 'AbortError') reject(init.signal?.reason ?? err);
        else reject(Object.assign(new TypeError('fetch failed'), { cause: err }));
      };
      const headers: Record<string, string> = { ...init.headers };
      if (init.body !== null) headers['content-length'] = String(Buffer.byteLength(init.body));
      const req = request(url, { method: init.method, headers, agent, ...(init.signal ? { signal: init.signal } : {}) }, (res) => {
        const outHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value === undefined) continue;
          for (const one of Array.isArray(value) ? value : [value]) outHeaders.append(name, one);
        }
        const status = res.statusCode ?? 500;
        const empty = status === 204 || status === 304 || init.method === 'HEAD';
        res.on('error', () => undefined);
        if (empty) res.resume();
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, headers: outHeaders }));
      });
      req.on('error', fail);
      req.end(init.body ?? undefined);
    });
}

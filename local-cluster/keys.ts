import { mkdir, readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { createCa, ensurePemPair } from '#common/certificates.ts';
import { ensureCa as ensureClusterCa } from '#common/cluster-ca.ts';
import { DroverError } from '#common/errors.ts';
import { exists } from './files.ts';
import { run } from './run.ts';

/** ssh keys (ssh-keygen) and the cluster CA (#common/certificates.ts). Idempotent: kept when present. */

/** An ed25519 key pair at `path` / `path.pub`; returns the public key as 'ssh-ed25519 AAAA…'. */
export async function ensureEd25519Key(path: string, comment: string): Promise<string> {
  if (!(await exists(path)) || !(await exists(`${path}.pub`))) {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], { timeoutMs: 30_000, input: 'y\n' });
  }
  return publicKeyOf(path);
}

export async function publicKeyOf(privateKeyPath: string): Promise<string> {
  const text = (await readFile(`${privateKeyPath}.pub`, 'utf8')).trim();
  const [type, body] = text.split(/\s+/);
  if (!type || !body) throw new DroverError('DROVER_SSH_KEY_INVALID', `cannot read public key ${privateKeyPath}.pub`);
  return `${type} ${body}`;
}

/** 'SHA256:…' of a public key file, as OpenSSH prints it. */
export async function fingerprintOf(privateKeyPath: string): Promise<string> {
  const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${privateKeyPath}.pub`], { timeoutMs: 30_000 });
  const match = /SHA256:[A-Za-z0-9+/]+/.exec(stdout);
  if (!match) throw new DroverError('DROVER_SSH_KEY_INVALID', `no fingerprint in '${stdout}'`);
  return match[0];
}

/** A self-signed P-256 CA for mutual TLS between a cluster's agents (files 0600); kept when present. */
export async function ensureCa(certPath: string, keyPath: string, cluster: string): Promise<void> {
  if (dirname(certPath) === dirname(keyPath) && basename(certPath) === 'ca.crt' && basename(keyPath) === 'ca.key') {
    // The layout of `drover ca` (common/cluster-ca.ts), with its list of issued and revoked certificates.
    await ensureClusterCa(dirname(certPath), `drover ${cluster} cluster CA`);
    return;
  }
  await ensurePemPair({ certPath, keyPath }, () => createCa(`drover ${cluster} cluster CA`));
}

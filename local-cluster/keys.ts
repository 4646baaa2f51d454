import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** bin/drover-receive.js of this checkout: the forced command of the agents' key on every node. */
export const RECEIVE_ENTRY = fileURLToPath(new URL('../bin/drover-receive.js', import.meta.url));

export interface RestrictedKey {
  /** 'ssh-ed25519 AAAA…' */
  publicKey: string;
  /** The forced command's argv; each word plain (letters, digits, `_./:=@+-`), so no quoting is needed. */
  command: readonly string[];
  /** Client address patterns for `from=` (sshd's syntax: addresses, CIDRs, `*`/`?` wildcards); none: any. */
  from?: readonly string[];
  comment: string;
}

/**
 * One `authorized_keys` line that lets `publicKey` run only `command` (docs/DESIGN.md §24):
 * `restrict` (no pty, no forwarding of ports, agent or X11, no ~/.ssh/rc) and the forced
 * command, which reads what the client asked for from SSH_ORIGINAL_COMMAND. Pure.
 * @throws DROVER_SSH_KEY_INVALID for a word or pattern that would need quoting
 */
export function restrictedAuthorizedKey(key: RestrictedKey): string {
  const problems: string[] = [];
  if (!/^ssh-[a-z0-9-]+ [A-Za-z0-9+/=]+$/.test(key.publicKey)) problems.push('publicKey: not "<type> <base64>"');
  if (key.command.length === 0) problems.push('command: empty');
  key.command.forEach((word, i) => {
    if (!/^[A-Za-z0-9_./:=@+-]+$/.test(word)) problems.push(`command[${i}]: ${JSON.stringify(word)} needs quoting`);
  });
  key.from?.forEach((pattern, i) => {
    if (!/^!?[0-9A-Fa-f.:/*?]+$/.test(pattern)) problems.push(`from[${i}]: ${JSON.stringify(pattern)} is not an address pattern`);
  });
  if (!/^[A-Za-z0-9_.@-]*$/.test(key.comment)) problems.push(`comment: ${JSON.stringify(key.comment)}`);
  if (problems.length > 0) throw new DroverError('DROVER_SSH_KEY_INVALID', `cannot write a restricted authorized_keys line: ${problems.join('; ')}`, { detail: { problems } });
  const options = [`command="${key.command.join(' ')}"`, 'restrict', ...(key.from?.length ? [`from="${key.from.join(',')}"`] : [])];
  return `${options.join(',')} ${key.publicKey} ${key.comment}\n`;
}

/**
 * A node's authorized_keys (0600): the agents' key may run drover-receive for the node's pool
 * only. No `from=`: every node of a local cluster is on this host and its sshd listens on a
 * loopback address, so the key cannot be used from elsewhere anyway.
 */
export async function writeAuthorizedKeys(path: string, agentPublicKey: string, pool: string): Promise<void> {
  const line = restrictedAuthorizedKey({ publicKey: agentPublicKey, command: [process.execPath, RECEIVE_ENTRY, '--pool', pool], comment: 'drover-agents' });
  await writeFile(path, line, { mode: 0o600 });
}

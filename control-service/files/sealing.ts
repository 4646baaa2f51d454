/**
 * Secrets at rest (docs/DESIGN.md §22): AES-256-GCM with node:crypto, under a key the control
 * service keeps outside its store (a 32-byte key file beside the data directory, mode 0600,
 * created on first start). Two sub-keys are derived from it with HKDF-SHA256, one to seal and
 * one to name: a secret's id is HMAC-SHA256(naming key, content), so equal secrets share one
 * sealed copy and the id says nothing about a short secret (a plain hash of "hunter2" would).
 *
 * A sealed secret: `DRS1` ‖ 12-byte random nonce ‖ 16-byte tag ‖ ciphertext; the id is the
 * additional authenticated data, so a sealed copy cannot be passed off under another id.
 * A wrong key or a damaged copy fails authentication: `DROVER_SECRET_UNREADABLE`, and no byte
 * of plaintext is returned.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DroverError } from '#common/errors.ts';

const MAGIC = Buffer.from('DRS1');
const NONCE = 12;
const TAG = 16;
export const KEY_BYTES = 32;

export interface SealingKey {
  readonly seal: Buffer;
  readonly name: Buffer;
  /** SHA-256 of the master key, first 8 hex digits: names the key in logs without revealing it. */
  readonly fingerprint: string;
}

/** Derives the sealing and naming keys from a 32-byte master key. Pure. */
export function sealingKey(master: Buffer): SealingKey {
  if (master.length !== KEY_BYTES) throw new DroverError('DROVER_SECRET_KEY_INVALID', `a secrets key is ${KEY_BYTES} bytes, this one is ${master.length}`);
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), info, 32));
  return { seal: derive('drover secrets: seal'), name: derive('drover secrets: id'), fingerprint: createHash('sha256').update(master).digest('hex').slice(0, 8) };
}

/** A fresh random key (for tests and in-memory vaults). */
export function randomSealingKey(): SealingKey {
  return sealingKey(randomBytes(KEY_BYTES));
}

/**
 * Reads the key file, or creates it (0600, exclusively: two starting services cannot write two
 * keys) when there is none.
 * @throws DroverError `DROVER_SECRET_KEY_INVALID` when the file is not 32 bytes.
 */
export async function loadOrCreateKey(path: string): Promise<{ key: SealingKey; created: boolean }> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // Written whole under a private name, then linked into place: link(2) fails when the key
  // exists, so of several control services starting at once on one directory exactly one
  // creates it, and none ever reads it half-written (open 'wx' then write let another read 0 bytes).
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(randomBytes(KEY_BYTES));
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(tmp, path);
    return { key: sealingKey(await readFile(path)), created: true };
  } catch (err) {
    if ((err as { code?: string }).code !== 'EEXIST') throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  const master = await readFile(path);
  if (master.length !== KEY_BYTES) throw new DroverError('DROVER_SECRET_KEY_INVALID', `${path} is not a drover secrets key (${master.length} bytes, expected ${KEY_BYTES})`);
  return { key: sealingKey(master), created: false };
}

/** The id of a secret with this content: hex HMAC-SHA256 under the naming key. Pure. */
export function secretIdOf(key: SealingKey, content: Uint8Array): string {
  return createHmac('sha256', key.name).update(content).digest('hex');
}

/** The id of a config's or a project file's content: hex SHA-256. Pure. */
export function contentIdOf(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

export function seal(key: SealingKey, id: string, plaintext: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', key.seal, nonce);
  cipher.setAAD(Buffer.from(id));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([MAGIC, nonce, cipher.getAuthTag(), body]);
}

/**
 * The plaintext of a sealed secret.
 * @throws DroverError `DROVER_SECRET_UNREADABLE` (wrong key, another id, damaged or truncated copy).
 */
export function unseal(key: SealingKey, id: string, sealed: Uint8Array): Buffer {
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const unreadable = (why: string) => new DroverError('DROVER_SECRET_UNREADABLE', `secret ${id.slice(0, 12)}… cannot be decrypted with key ${key.fingerprint}: ${why}`);
  if (buf.length < MAGIC.length + NONCE + TAG || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw unreadable('not a sealed drover secret');
  const nonce = buf.subarray(MAGIC.length, MAGIC.length + NONCE);
  const tag = buf.subarray(MAGIC.length + NONCE, MAGIC.length + NONCE + TAG);
  const decipher = createDecipheriv('aes-256-gcm', key.seal, nonce);
  decipher.setAAD(Buffer.from(id));
  decipher.setAuthTag(tag);
  try {
    // GCM: nothing is returned unless the tag checks, so no partial plaintext leaks.
    const out = Buffer.concat([decipher.update(buf.subarray(MAGIC.length + NONCE + TAG)), decipher.final()]);
    return out;
  } catch {
    throw unreadable('wrong key, or the sealed copy is damaged');
  }
}

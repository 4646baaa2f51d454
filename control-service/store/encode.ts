/**
 * Serializing a `Desired` document, and its configuration tag, in time proportional to what
 * changed. Entries are frozen once validated (validate.ts), so the JSON text and digest of
 * each entry are computed once and cached by identity; so are the text (as bytes) and the
 * digest of each collection array. A move changes the `migrations` array only: writing the
 * document then encodes that array and reuses the bytes of the 10k-entry others.
 */
import { createHash } from 'node:crypto';
import type { Desired } from '#common/model.ts';
import { replacedPositions } from '../desired/list-diff.ts';

const texts = new WeakMap<object, string>();
const digests = new WeakMap<object, Buffer>();
const listBytes = new WeakMap<readonly object[], Buffer>();
const listDigests = new WeakMap<readonly object[], Buffer>();

/** The JSON text of one frozen entry (cached). */
export function entryJson(entry: object): string {
  let text = texts.get(entry);
  if (text === undefined) {
    text = JSON.stringify(entry);
    texts.set(entry, text);
  }
  return text;
}

function entryDigest(entry: object): Buffer {
  let digest = digests.get(entry);
  if (digest === undefined) {
    digest = createHash('md5').update(entryJson(entry)).digest();
    digests.set(entry, digest);
  }
  return digest;
}

/** `[a,b,…]` from cached entry texts. */
export function listJson(list: readonly object[]): string {
  return '[' + list.map(entryJson).join(',') + ']';
}

/** The UTF-8 bytes of `listJson`, cached per (frozen) array. */
export function listBuffer(list: readonly object[]): Buffer {
  let bytes = listBytes.get(list);
  if (bytes === undefined) {
    bytes = Buffer.from(listJson(list));
    if (Object.isFrozen(list)) listBytes.set(list, bytes);
  }
  return bytes;
}

/** Per collection array: its entries' digests end to end (what its digest hashes). */
const digestBytes = new WeakMap<readonly object[], Buffer>();
/** Per collection, the last array whose digest bytes were made: the base for the next one. */
const lastDigested = new Map<string, WeakRef<readonly object[]>>();

function listDigest(list: readonly object[], collection: string): Buffer {
  let digest = listDigests.get(list);
  if (digest === undefined) {
    digest = createHash('md5').update(entryDigests(list, collection)).digest();
    if (Object.isFrozen(list)) listDigests.set(list, digest);
  }
  return digest;
}

/**
 * The entries' digests end to end. A list that replaces a few entries of the last one
 * (a handoff at 10k) copies its bytes and rewrites those 16-byte slots.
 */
function entryDigests(list: readonly object[], collection: string): Buffer {
  let bytes = digestBytes.get(list);
  if (bytes !== undefined) return bytes;
  const previous = lastDigested.get(collection)?.deref();
  const base = previous === undefined ? undefined : digestBytes.get(previous);
  const positions = previous === undefined || base === undefined ? null : replacedPositions(previous, list);
  if (positions !== null) {
    bytes = Buffer.from(base!);
    for (const i of positions) entryDigest(list[i]!).copy(bytes, i * 16);
  } else bytes = Buffer.concat(list.map(entryDigest));
  if (Object.isFrozen(list)) {
    digestBytes.set(list, bytes);
    lastDigested.set(collection, new WeakRef(list));
  }
  return bytes;
}

const order = ['nodes', 'datasets', 'applications', 'leases', 'migrations'] as const satisfies readonly (keyof Desired)[];

/** The document's JSON as byte chunks to write one after another (collections in a fixed order). */
export function desiredChunks(desired: Desired): Buffer[] {
  const chunks: Buffer[] = [];
  order.forEach((key, i) => {
    chunks.push(Buffer.from(`${i === 0 ? '{' : ','}"${key}":`), listBuffer(desired[key]));
  });
  chunks.push(Buffer.from('}'));
  return chunks;
}

/** The document's JSON text. */
export function desiredJson(desired: Desired): string {
  return Buffer.concat(desiredChunks(desired)).toString('utf8');
}

/**
 * The configuration tag: a hash of the document's content (a hash of its collections'
 * hashes, each a hash of its entries' hashes, in order), so equal documents have equal tags
 * across restarts. Not a security feature: Flocker used MurmurHash3 for the same purpose.
 */
export function desiredTag(desired: Desired): string {
  const root = createHash('md5');
  for (const key of order) {
    root.update(`${key}:${desired[key].length};`);
    root.update(listDigest(desired[key], key));
  }
  return root.digest('hex');
}

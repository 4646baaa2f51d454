/**
 * Serializing a `Desired` document, and its configuration tag, in time proportional to what
 * changed. Entries are frozen once validated (validate.ts), so the JSON text and digest of
 * each entry are computed once and cached by identity; a document is then the join of
 * cached texts, and its tag a hash over the cached digests.
 */
import { createHash } from 'node:crypto';
import type { Desired } from '#common/model.ts';

const texts = new WeakMap<object, string>();
const digests = new WeakMap<object, Buffer>();

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

const order = ['nodes', 'datasets', 'applications', 'leases', 'migrations'] as const satisfies readonly (keyof Desired)[];

/** The document's JSON text, with its collections in a fixed order. */
export function desiredJson(desired: Desired): string {
  return '{' + order.map((key) => `"${key}":${listJson(desired[key])}`).join(',') + '}';
}

/**
 * The configuration tag: a hash of the document's content (a hash of its entries' hashes,
 * in order), so equal documents have equal tags across restarts. Not a security feature:
 * Flocker used MurmurHash3 for the same purpose.
 */
export function desiredTag(desired: Desired): string {
  const root = createHash('md5');
  for (const key of order) {
    root.update(`${key}:${desired[key].length};`);
    for (const entry of desired[key]) root.update(entryDigest(entry));
  }
  return root.digest('hex');
}

/**
 * The vault of project files, configs and sealed secrets in etcd (docs/DESIGN.md §31), so every
 * control service on one etcd holds the same contents and a newly elected leader lacks none.
 * The same contents and rules as the file vault (vault.ts): addressed by content, secrets sealed
 * before they leave the process, immutable once written. Under the store's prefix:
 *
 *   contents/meta/<kind>/<id>       {stored_at, size, parts}: written last, so a content is
 *                                   visible only once all its parts are there
 *   contents/part/<kind>/<id>/<n>   the bytes, cut in parts of 512 KiB (etcd refuses requests
 *                                   over 1.5 MiB; one part is one request)
 *   contents/key                    {fingerprint} of the secrets key the first service used
 *
 * Removal (the sweep) is one transaction conditioned on the meta's mod revision it read, so a
 * deploy that stored the content again meanwhile (a new `stored_at`) keeps it, whichever
 * control service swept. The key itself is never stored here: see `checkSharedKey`.
 */
import { DroverError } from '#common/errors.ts';
import type { EtcdClient, Kv } from '../store/etcd-client.ts';
import type { SealingKey } from './sealing.ts';
import { BaseVault, type FileKind, type StoredContent } from './vault.ts';

/** Bytes per part: well under etcd's 1.5 MiB request limit with the key and framing. */
export const PART_BYTES = 512 * 1024;
const CONTENT_ID = /^[0-9a-f]{64}$/;

interface Meta {
  stored_at: number;
  size: number;
  parts: number;
}

export class EtcdVault extends BaseVault {
  constructor(
    private readonly client: EtcdClient,
    private readonly prefix: string,
    key: SealingKey,
    private readonly now: () => number = Date.now,
  ) {
    super(key);
  }

  private metaKey(kind: FileKind, id: string): string {
    return `${this.prefix}contents/meta/${kind}/${id}`;
  }

  private partKey(kind: FileKind, id: string, n: number): string {
    return `${this.prefix}contents/part/${kind}/${id}/${n}`;
  }

  private async meta(kind: FileKind, id: string): Promise<{ meta: Meta; kv: Kv } | null> {
    const { found } = await this.client.getMany([this.metaKey(kind, id)]);
    const kv = found[0];
    if (!kv) return null;
    return { meta: parseMeta(kv.value), kv };
  }

  protected async touch(kind: FileKind, id: string): Promise<boolean> {
    const current = await this.meta(kind, id);
    if (current === null) return false;
    const meta: Meta = { ...current.meta, stored_at: this.now() };
    const res = await this.client.txn([{ key: this.metaKey(kind, id), target: 'mod', revision: current.kv.modRevision }], [{ put: this.metaKey(kind, id), value: JSON.stringify(meta) }]);
    // Changed meanwhile: removed (store it again) or touched by another service (stored now either way).
    return res.succeeded || (await this.meta(kind, id)) !== null;
  }

  protected async storedAt(kind: FileKind, id: string): Promise<number | null> {
    return (await this.meta(kind, id))?.meta.stored_at ?? null;
  }

  async list(): Promise<StoredContent[]> {
    const base = `${this.prefix}contents/meta/`;
    const { found } = await this.client.getPrefix(base);
    const out: StoredContent[] = [];
    for (const kv of found) {
      const [kind, id] = kv.key.slice(base.length).split('/') as [string, string];
      if ((kind !== 'file' && kind !== 'secret') || !CONTENT_ID.test(id ?? '')) continue;
      out.push({ kind, id, storedAt: parseMeta(kv.value).stored_at });
    }
    return out;
  }

  protected async write(kind: FileKind, id: string, bytes: Buffer): Promise<void> {
    const parts = Math.max(1, Math.ceil(bytes.length / PART_BYTES));
    for (let n = 0; n < parts; n++) {
      await this.client.txn([], [{ put: this.partKey(kind, id, n), value: bytes.subarray(n * PART_BYTES, (n + 1) * PART_BYTES) }]);
    }
    const meta: Meta = { stored_at: this.now(), size: bytes.length, parts };
    await this.client.txn([], [{ put: this.metaKey(kind, id), value: JSON.stringify(meta) }]);
  }

  protected async read(kind: FileKind, id: string): Promise<Buffer | null> {
    const current = await this.meta(kind, id);
    if (current === null) return null;
    const keys = Array.from({ length: current.meta.parts }, (_, n) => this.partKey(kind, id, n));
    // At the meta's revision or later: parts are written before it and never change.
    const { found } = await this.client.getMany(keys);
    if (found.some((kv) => kv === null)) return null;
    const bytes = Buffer.concat(found.map((kv) => kv!.value));
    return bytes.length === current.meta.size ? bytes : null;
  }

  protected async remove(kind: FileKind, id: string): Promise<void> {
    const current = await this.meta(kind, id);
    if (current === null) return;
    const deletes = [this.metaKey(kind, id), ...Array.from({ length: current.meta.parts }, (_, n) => this.partKey(kind, id, n))].map((key) => ({ delete: key }));
    await this.client.txn([{ key: this.metaKey(kind, id), target: 'mod', revision: current.kv.modRevision }], deletes);
  }

  /** Whether the content's meta was last written before `before` — checked and removed in one conditioned transaction. */
  override removeIfStoredBefore(kind: FileKind, id: string, before: number): Promise<boolean> {
    return this.turns.run(async () => {
      const current = await this.meta(kind, id);
      if (current === null || current.meta.stored_at >= before) return false;
      const deletes = [this.metaKey(kind, id), ...Array.from({ length: current.meta.parts }, (_, n) => this.partKey(kind, id, n))].map((key) => ({ delete: key }));
      const res = await this.client.txn([{ key: this.metaKey(kind, id), target: 'mod', revision: current.kv.modRevision }], deletes);
      return res.succeeded;
    });
  }
}

function parseMeta(value: Buffer): Meta {
  const v = JSON.parse(value.toString('utf8')) as Partial<Meta>;
  return { stored_at: Number(v.stored_at ?? 0), size: Number(v.size ?? 0), parts: Number(v.parts ?? 1) };
}

/**
 * Every control service on one etcd must seal and name secrets with the same key, or a secret
 * stored through one is unreadable through the next leader. The key stays a file on each
 * control service's host (copied there like its TLS key; never in etcd, where whoever reads
 * etcd would read every secret): etcd keeps only its fingerprint, written by the first service
 * that starts, and a service with another key refuses to start. Returns whether it recorded it.
 * @throws DroverError `DROVER_SECRET_KEY_MISMATCH` naming both fingerprints (never the key).
 */
export async function checkSharedKey(client: EtcdClient, prefix: string, key: SealingKey, keyFile: string): Promise<boolean> {
  const at = `${prefix}contents/key`;
  const res = await client.txn([{ key: at, target: 'create', revision: 0 }], [{ put: at, value: JSON.stringify({ fingerprint: key.fingerprint }) }], [{ get: at }]);
  if (res.succeeded) return true;
  const recorded = (JSON.parse(res.found[0]?.value.toString('utf8') ?? '{}') as { fingerprint?: string }).fingerprint;
  if (recorded !== key.fingerprint) {
    throw new DroverError(
      'DROVER_SECRET_KEY_MISMATCH',
      `the secrets key ${keyFile} (fingerprint ${key.fingerprint}) is not the one the other control services on this etcd use (fingerprint ${recorded}): copy their key file here (--secrets-key), or no secret stored through them could be read`,
      { detail: { keyFile, fingerprint: key.fingerprint, expected: recorded } },
    );
  }
  return false;
}

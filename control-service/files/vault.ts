/**
 * Where the control service keeps the contents of the files that travel with a project
 * (docs/DESIGN.md §22), beside its store of desired configuration and addressed by content:
 *
 * - a config's or a project file's bytes under `<dir>/files/<sha256>`, checked on the way in;
 * - a secret's bytes sealed (sealing.ts) under `<dir>/secrets/<hmac>`; only sealed bytes ever
 *   reach the disk, and the key is not in `<dir>`.
 *
 * Contents are immutable (the id is the content), so a write of an id already there is a
 * no-op and a reader never sees a half-written file (write to a temporary name, fsync, rename).
 * XXX: contents no application refers to any more are kept (there is no sweep yet); they are
 * small, and a sweep must not race a deploy that is about to refer to them again.
 */
import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DroverError } from '#common/errors.ts';
import { contentIdOf, randomSealingKey, seal, secretIdOf, unseal, type SealingKey } from './sealing.ts';

export type FileKind = 'file' | 'secret';

export interface Vault {
  /** The id a content gets as a secret (keyed HMAC) or as a file (SHA-256). Pure. */
  idOf(kind: FileKind, content: Uint8Array): string;
  /** Stores a content under its id (computed here; returned). Idempotent. */
  put(kind: FileKind, content: Uint8Array): Promise<string>;
  /**
   * A stored content (a secret decrypted).
   * @throws DroverError `DROVER_FILE_NOT_FOUND`; `DROVER_SECRET_UNREADABLE` for a secret sealed under another key.
   */
  get(kind: FileKind, id: string): Promise<Buffer>;
}

abstract class BaseVault implements Vault {
  constructor(protected readonly key: SealingKey) {}

  idOf(kind: FileKind, content: Uint8Array): string {
    return kind === 'secret' ? secretIdOf(this.key, content) : contentIdOf(content);
  }

  async put(kind: FileKind, content: Uint8Array): Promise<string> {
    const id = this.idOf(kind, content);
    if (await this.exists(kind, id)) return id;
    await this.write(kind, id, kind === 'secret' ? seal(this.key, id, content) : Buffer.from(content));
    return id;
  }

  async get(kind: FileKind, id: string): Promise<Buffer> {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new DroverError('DROVER_FILE_NOT_FOUND', `"${id}" is not a content id`);
    const stored = await this.read(kind, id);
    if (stored === null) throw new DroverError('DROVER_FILE_NOT_FOUND', `no ${kind === 'secret' ? 'secret' : 'file content'} ${id.slice(0, 12)}… is stored`);
    if (kind === 'secret') return unseal(this.key, id, stored);
    if (contentIdOf(stored) !== id) throw new DroverError('DROVER_FILE_NOT_FOUND', `the stored copy of ${id.slice(0, 12)}… is damaged`);
    return stored;
  }

  protected abstract exists(kind: FileKind, id: string): Promise<boolean>;
  protected abstract write(kind: FileKind, id: string, bytes: Buffer): Promise<void>;
  protected abstract read(kind: FileKind, id: string): Promise<Buffer | null>;
}

/** Contents in a directory (the control service's data directory). */
export class FileVault extends BaseVault {
  constructor(
    private readonly dir: string,
    key: SealingKey,
  ) {
    super(key);
  }

  private path(kind: FileKind, id: string): string {
    return join(this.dir, kind === 'secret' ? 'secrets' : 'files', id);
  }

  protected async exists(kind: FileKind, id: string): Promise<boolean> {
    return stat(this.path(kind, id)).then(
      () => true,
      () => false,
    );
  }

  protected async write(kind: FileKind, id: string, bytes: Buffer): Promise<void> {
    const final = this.path(kind, id);
    await mkdir(join(final, '..'), { recursive: true, mode: 0o700 });
    const temp = `${final}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, final);
  }

  protected async read(kind: FileKind, id: string): Promise<Buffer | null> {
    return readFile(this.path(kind, id)).catch((err: { code?: string }) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
  }
}

/** Contents in memory, secrets still sealed (tests, and a control service without a data directory). */
export class MemoryVault extends BaseVault {
  private readonly stored = new Map<string, Buffer>();

  constructor(key: SealingKey = randomSealingKey()) {
    super(key);
  }

  protected async exists(kind: FileKind, id: string): Promise<boolean> {
    return this.stored.has(`${kind}/${id}`);
  }

  protected async write(kind: FileKind, id: string, bytes: Buffer): Promise<void> {
    this.stored.set(`${kind}/${id}`, bytes);
  }

  protected async read(kind: FileKind, id: string): Promise<Buffer | null> {
    return this.stored.get(`${kind}/${id}`) ?? null;
  }

  /** What is kept for a secret (sealed bytes), for tests that check nothing plain is kept. */
  sealedCopy(id: string): Buffer | undefined {
    return this.stored.get(`secret/${id}`);
  }
}

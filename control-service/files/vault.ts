/**
 * Where the control service keeps the contents of the files that travel with a project
 * (docs/DESIGN.md §22), beside its store of desired configuration and addressed by content:
 *
 * - a config's or a project file's bytes under `<dir>/files/<sha256>`, checked on the way in;
 * - a secret's bytes sealed (sealing.ts) under `<dir>/secrets/<hmac>`; only sealed bytes ever
 *   reach the disk, and the key is not in `<dir>`.
 *
 * Contents are immutable (the id is the content), so a write of an id already there only marks
 * it stored again now, and a reader never sees a half-written file (write to a temporary name,
 * fsync, rename). Contents no application names any more are removed by the sweep (sweep.ts)
 * once they have been unnamed for a grace period: `put` and `removeIfStoredBefore` take turns,
 * so a deploy that stores a content again just before the sweep's check keeps it.
 */
import { mkdir, open, readdir, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DroverError } from '#common/errors.ts';
import { contentIdOf, randomSealingKey, seal, secretIdOf, unseal, type SealingKey } from './sealing.ts';

export type FileKind = 'file' | 'secret';

/** A stored content and when it was last stored (epoch ms). */
export interface StoredContent {
  kind: FileKind;
  id: string;
  storedAt: number;
}

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
  /** Every stored content, with when it was last stored. */
  list(): Promise<StoredContent[]>;
  /** Removes a content unless it was stored (again) at or after `before`; whether it removed it. */
  removeIfStoredBefore(kind: FileKind, id: string, before: number): Promise<boolean>;
}

/** Runs one operation at a time, in order. */
class Turns {
  private last: Promise<unknown> = Promise.resolve();

  run<T>(op: () => Promise<T>): Promise<T> {
    const next = this.last.then(op, op);
    this.last = next.catch(() => undefined);
    return next;
  }
}

export abstract class BaseVault implements Vault {
  protected readonly turns = new Turns();

  constructor(protected readonly key: SealingKey) {}

  idOf(kind: FileKind, content: Uint8Array): string {
    return kind === 'secret' ? secretIdOf(this.key, content) : contentIdOf(content);
  }

  async put(kind: FileKind, content: Uint8Array): Promise<string> {
    const id = this.idOf(kind, content);
    await this.turns.run(async () => {
      if (await this.touch(kind, id)) return;
      await this.write(kind, id, kind === 'secret' ? seal(this.key, id, content) : Buffer.from(content));
    });
    return id;
  }

  removeIfStoredBefore(kind: FileKind, id: string, before: number): Promise<boolean> {
    return this.turns.run(async () => {
      const at = await this.storedAt(kind, id);
      if (at === null || at >= before) return false;
      await this.remove(kind, id);
      return true;
    });
  }

  async get(kind: FileKind, id: string): Promise<Buffer> {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new DroverError('DROVER_FILE_NOT_FOUND', `"${id}" is not a content id`);
    const stored = await this.read(kind, id);
    if (stored === null) throw new DroverError('DROVER_FILE_NOT_FOUND', `no ${kind === 'secret' ? 'secret' : 'file content'} ${id.slice(0, 12)}… is stored`);
    if (kind === 'secret') return unseal(this.key, id, stored);
    if (contentIdOf(stored) !== id) throw new DroverError('DROVER_FILE_NOT_FOUND', `the stored copy of ${id.slice(0, 12)}… is damaged`);
    return stored;
  }

  abstract list(): Promise<StoredContent[]>;
  /** Marks a stored content stored now; false when there is none. */
  protected abstract touch(kind: FileKind, id: string): Promise<boolean>;
  protected abstract storedAt(kind: FileKind, id: string): Promise<number | null>;
  protected abstract write(kind: FileKind, id: string, bytes: Buffer): Promise<void>;
  protected abstract read(kind: FileKind, id: string): Promise<Buffer | null>;
  protected abstract remove(kind: FileKind, id: string): Promise<void>;
}

const CONTENT_ID = /^[0-9a-f]{64}$/;
const KINDS: readonly FileKind[] = ['file', 'secret'];

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

  protected async touch(kind: FileKind, id: string): Promise<boolean> {
    const now = new Date();
    return utimes(this.path(kind, id), now, now).then(
      () => true,
      () => false,
    );
  }

  protected async storedAt(kind: FileKind, id: string): Promise<number | null> {
    return stat(this.path(kind, id)).then(
      (s) => s.mtimeMs,
      () => null,
    );
  }

  async list(): Promise<StoredContent[]> {
    const out: StoredContent[] = [];
    for (const kind of KINDS) {
      const names = await readdir(join(this.dir, kind === 'secret' ? 'secrets' : 'files')).catch(() => [] as string[]);
      for (const id of names.filter((n) => CONTENT_ID.test(n))) {
        const at = await this.storedAt(kind, id);
        if (at !== null) out.push({ kind, id, storedAt: at });
      }
    }
    return out;
  }

  protected async remove(kind: FileKind, id: string): Promise<void> {
    await unlink(this.path(kind, id)).catch((err: { code?: string }) => {
      if (err.code !== 'ENOENT') throw err;
    });
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
  private readonly times = new Map<string, number>();

  constructor(
    key: SealingKey = randomSealingKey(),
    private readonly now: () => number = Date.now,
  ) {
    super(key);
  }

  protected async touch(kind: FileKind, id: string): Promise<boolean> {
    if (!this.stored.has(`${kind}/${id}`)) return false;
    this.times.set(`${kind}/${id}`, this.now());
    return true;
  }

  protected async storedAt(kind: FileKind, id: string): Promise<number | null> {
    return this.times.get(`${kind}/${id}`) ?? null;
  }

  async list(): Promise<StoredContent[]> {
    return [...this.times].map(([key, storedAt]) => {
      const [kind, id] = key.split('/') as [FileKind, string];
      return { kind, id, storedAt };
    });
  }

  protected async write(kind: FileKind, id: string, bytes: Buffer): Promise<void> {
    this.stored.set(`${kind}/${id}`, bytes);
    this.times.set(`${kind}/${id}`, this.now());
  }

  protected async remove(kind: FileKind, id: string): Promise<void> {
    this.stored.delete(`${kind}/${id}`);
    this.times.delete(`${kind}/${id}`);
  }

  protected async read(kind: FileKind, id: string): Promise<Buffer | null> {
    return this.stored.get(`${kind}/${id}`) ?? null;
  }

  /** What is kept for a secret (sealed bytes), for tests that check nothing plain is kept. */
  sealedCopy(id: string): Buffer | undefined {
    return this.stored.get(`secret/${id}`);
  }
}

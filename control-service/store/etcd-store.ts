/**
 * The desired configuration in etcd (docs/DESIGN.md §28), behind the same `ConfigStore` as the
 * file store and passing the same contract suite.
 *
 * Keys, under a prefix (`/drover/` by default):
 * - `head`: `{format_version, version, writer, chunks: {collection: [hash…]}}`, small (the
 *   hashes of the chunks, ~35 bytes each).
 * - `chunk/<collection>/<hash>`: a JSON array of entries (chunks.ts), named by its content.
 *
 * A commit stores the chunks that are new (invisible until a head names them), then writes the
 * head in one transaction conditioned on the head's mod revision it read — and, for a leader,
 * on its election key's create revision (`fence`): a stale leader's write is refused by etcd
 * itself. The same transaction deletes the chunks the new head no longer names; a reader of the
 * previous head reads its chunks at that head's revision (etcd's MVCC keeps them).
 *
 * Following: a store watches `head` and adopts each newer document (only the chunks it does not
 * hold are fetched; unchanged chunks keep their validated entries, so the per-entry caches
 * stay warm). A watch that meets a compacted revision re-reads the head and watches on.
 */
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { Desired } from '#common/model.ts';
import { chunkList, COLLECTIONS, type Chunk, type Collection } from './chunks.ts';
import { CommittingStore } from './committing-store.ts';
import type { StoreSnapshot } from './config-store.ts';
import { desiredTag } from './encode.ts';
import type { EtcdClient, Kv, TxnCompare, TxnOp } from './etcd-client.ts';
import { validateDesired } from './validate.ts';

export const ETCD_FORMAT_VERSION = 1;
/** Ops per staging transaction, and bytes: under etcd's defaults (128 ops, 1.5 MiB). */
const STAGE_OPS = 100;
const STAGE_BYTES = 1024 * 1024;

export interface EtcdStoreOptions {
  client: EtcdClient;
  log: Logger;
  /** Key prefix; default `/drover/`. */
  prefix?: string;
  /** Who writes: recorded in each head this store writes (etcd's history then says who wrote what). */
  writer: string;
  /**
   * The leader's fence, asked before every write: the election key and its create revision,
   * checked by etcd in the same transaction. Null: not the leader, nothing is written
   * (DROVER_NOT_LEADER). Absent: the store writes unfenced (tests, a single writer).
   */
  fence?: () => TxnCompare | null;
  /** Watch the head and adopt what others write (default true). */
  follow?: boolean;
}

interface Head {
  format_version: number;
  version: number;
  writer: string;
  chunks: Record<Collection, string[]>;
}

type Chunks = Record<Collection, readonly Chunk[]>;

export class EtcdConfigStore extends CommittingStore {
  private readonly client: EtcdClient;
  private readonly prefix: string;
  /** Mod revision of the head the current document came from (0: no head yet). */
  private headRevision = 0;
  /** The revision of the last read: a watch starts after it. */
  private readRevision = 0;
  private chunks: Chunks = emptyChunks();
  private watch: { cancel(): Promise<void> } | null = null;
  private reloading: Promise<void> | null = null;
  private reloadAgain = false;
  private stopped = false;
  /** Sizes of the last commit, for the benchmark and the test that measures them. */
  lastWrite = { headBytes: 0, largestChunkBytes: 0, chunksWritten: 0, chunksDeleted: 0 };

  constructor(private readonly options: EtcdStoreOptions) {
    super(options.log.child({ subsystem: 'store', store: 'etcd' }));
    this.client = options.client;
    this.prefix = options.prefix ?? '/drover/';
  }

  get headKey(): string {
    return `${this.prefix}head`;
  }

  protected async read(): Promise<{ version: number; desired: unknown }> {
    const loaded = await this.readLatest();
    if (loaded !== null) this.install(loaded);
    if (this.options.follow !== false) this.follow();
    return loaded === null ? { version: 0, desired: undefined } : { version: loaded.version, desired: loaded.desired };
  }

  /** Starts watching the head from just after the last read (called by load unless `follow: false`). */
  follow(): void {
    if (this.watch || this.stopped) return;
    this.watch = this.client.watchKey(
      this.headKey,
      this.readRevision + 1,
      (kv) => {
        if (kv !== null && kv.modRevision > this.headRevision) this.reloadSoon();
      },
      (err) => {
        this.watch = null;
        if (this.stopped) return;
        this.log.warn({ err, code: err.code, from: this.readRevision + 1 }, 'store watch lost; the head is read again');
        this.reloadSoon(true);
      },
    );
  }

  protected override async refresh(): Promise<void> {
    const loaded = await this.readLatest();
    if (loaded !== null && loaded.headRevision > this.headRevision) this.adoptLoaded(loaded);
  }

  protected async persist(next: StoreSnapshot, previous: StoreSnapshot): Promise<void> {
    const fence = this.options.fence ? this.options.fence() : undefined;
    if (fence === null) throw new DroverError('DROVER_NOT_LEADER', 'this control service is not the leader; nothing was written', { retryable: true });
    const chunks = {} as Record<Collection, readonly Chunk[]>;
    for (const c of COLLECTIONS) chunks[c] = next.desired[c] === previous.desired[c] ? this.chunks[c] : chunkList(c, next.desired[c], this.chunks[c]);
    const before = this.keysOf(this.chunks);
    const after = this.keysOf(chunks);
    const fresh = [...after].filter(([key]) => !before.has(key));
    const gone = [...before.keys()].filter((key) => !after.has(key));
    const fences: TxnCompare[] = fence ? [fence] : [];
    // New chunks first, in transactions of bounded size; none is visible until the head names it.
    let ops: TxnOp[] = [];
    let bytes = 0;
    for (const [key, chunk] of fresh) {
      if (ops.length >= STAGE_OPS || bytes + chunk.text.length > STAGE_BYTES) {
        await this.fenced(fences, ops);
        ops = [];
        bytes = 0;
      }
      ops.push({ put: key, value: chunk.text });
      bytes += chunk.text.length;
    }
    if (ops.length > 0) await this.fenced(fences, ops);
    const head: Head = { format_version: ETCD_FORMAT_VERSION, version: next.version, writer: this.options.writer, chunks: mapCollections((c) => chunks[c].map((k) => k.hash)) };
    const headText = JSON.stringify(head);
    const inline = gone.slice(0, STAGE_OPS);
    const res = await this.client.txn(
      [{ key: this.headKey, target: 'mod', revision: this.headRevision }, ...fences],
      [{ put: this.headKey, value: headText }, ...inline.map((key) => ({ delete: key }))],
      fence ? [{ get: fence.key }] : [],
    );
    if (!res.succeeded) {
      const leader = res.found[0];
      if (fence && leader?.createRevision !== fence.revision) throw new DroverError('DROVER_NOT_LEADER', 'this control service lost its leadership; nothing was written', { retryable: true });
      throw new DroverError('DROVER_STORE_CONFLICT', 'another control service changed the configuration first', { retryable: true });
    }
    // Set before any await: a watch event of this very write is then recognized as ours.
    this.headRevision = res.revision;
    this.readRevision = Math.max(this.readRevision, res.revision);
    this.chunks = chunks;
    for (let at = inline.length; at < gone.length; at += STAGE_OPS) {
      // Deleted only while the head is still this one: a later head may name them again.
      await this.client.txn([{ key: this.headKey, target: 'mod', revision: res.revision }, ...fences], gone.slice(at, at + STAGE_OPS).map((key) => ({ delete: key })));
    }
    this.lastWrite = { headBytes: headText.length, largestChunkBytes: Math.max(0, ...fresh.map(([, c]) => c.text.length)), chunksWritten: fresh.length, chunksDeleted: gone.length };
  }

  protected override async release(): Promise<void> {
    this.stopped = true;
    await this.watch?.cancel();
    this.watch = null;
    while (this.reloading) await this.reloading;
  }

  /** Bytes of every value under the prefix, largest first (what a test measures). */
  async valueSizes(): Promise<{ key: string; bytes: number }[]> {
    const keys = (await this.client.getPrefix(this.prefix, true)).found.map((kv) => kv.key);
    const out: { key: string; bytes: number }[] = [];
    for (let at = 0; at < keys.length; at += 32) {
      const { found } = await this.client.getMany(keys.slice(at, at + 32));
      for (const kv of found) if (kv) out.push({ key: kv.key, bytes: kv.value.length });
    }
    return out.sort((a, b) => b.bytes - a.bytes);
  }

  private async fenced(fences: TxnCompare[], ops: TxnOp[]): Promise<void> {
    const res = await this.client.txn(fences, ops);
    if (!res.succeeded) throw new DroverError('DROVER_NOT_LEADER', 'this control service lost its leadership; nothing was written', { retryable: true });
  }

  private keysOf(chunks: Chunks): Map<string, Chunk> {
    const keys = new Map<string, Chunk>();
    for (const c of COLLECTIONS) for (const chunk of chunks[c]) keys.set(`${this.prefix}chunk/${c}/${chunk.hash}`, chunk);
    return keys;
  }

  /** Reloads in the background, one at a time; a request made meanwhile runs once more after. */
  private reloadSoon(restartWatch = false): void {
    if (this.reloading) {
      this.reloadAgain = true;
      return;
    }
    this.reloading = (async () => {
      for (let tries = 0; !this.stopped; tries++) {
        this.reloadAgain = false;
        try {
          const loaded = await this.readLatest();
          if (loaded !== null && loaded.headRevision > this.headRevision) this.adoptLoaded(loaded);
          if (restartWatch) {
            restartWatch = false;
            this.follow();
          }
          if (!this.reloadAgain) return;
        } catch (err) {
          this.log.warn({ err }, 'store head not read; trying again');
          await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** tries)));
        }
      }
    })().finally(() => (this.reloading = null));
  }

  private adoptLoaded(loaded: Loaded): void {
    this.install(loaded);
    this.adopt({ version: loaded.version, desired: loaded.desired, tag: desiredTag(loaded.desired) });
  }

  private install(loaded: Loaded): void {
    this.headRevision = loaded.headRevision;
    this.readRevision = Math.max(this.readRevision, loaded.revision);
    this.chunks = loaded.chunks;
  }

  /**
   * The newest head and its chunks, read at one revision; null when there is no head. A chunk
   * already held is not fetched again. A compacted revision (the head moved on and etcd
   * compacted between the two reads) reads again.
   */
  private async readLatest(): Promise<Loaded | null> {
    for (let tries = 0; ; tries++) {
      const { found, revision } = await this.client.getMany([this.headKey]);
      const kv = found[0];
      this.readRevision = Math.max(this.readRevision, revision);
      if (!kv) return null;
      try {
        return await this.readAt(kv, revision);
      } catch (err) {
        if (!(err instanceof DroverError && err.code === 'DROVER_ETCD_COMPACTED') || tries >= 3) throw err;
      }
    }
  }

  private async readAt(kv: Kv, revision: number): Promise<Loaded> {
    const head = parseHead(kv);
    const held = new Map<string, Chunk>();
    for (const c of COLLECTIONS) for (const chunk of this.chunks[c]) held.set(`${c}/${chunk.hash}`, chunk);
    const missing = COLLECTIONS.flatMap((c) => head.chunks[c].filter((h) => !held.has(`${c}/${h}`)).map((h) => `${c}/${h}`));
    const fetched = new Map<string, string>();
    for (let at = 0; at < missing.length; at += 32) {
      const part = missing.slice(at, at + 32);
      const got = await this.client.getMany(part.map((k) => `${this.prefix}chunk/${k}`), revision);
      part.forEach((k, i) => {
        const value = got.found[i];
        if (!value) throw corrupt(`${this.prefix}chunk/${k} is missing (named by the head at revision ${kv.modRevision})`);
        fetched.set(k, value.value.toString('utf8'));
      });
    }
    const raw: Record<string, unknown[]> = {};
    const previous = this.current0();
    for (const c of COLLECTIONS) {
      const same = previous !== null && sameHashes(head.chunks[c], this.chunks[c]);
      raw[c] = same ? (previous[c] as unknown[]) : head.chunks[c].flatMap((h) => held.get(`${c}/${h}`)?.entries ?? (JSON.parse(fetched.get(`${c}/${h}`)!) as unknown[]));
    }
    const desired = validateDesired(raw);
    // Each chunk keeps the validated entries (frozen, parsed once): the next read and the
    // next write reuse them.
    const chunks = mapCollections((c) => {
      let at = 0;
      return head.chunks[c].map((h) => {
        const before = held.get(`${c}/${h}`);
        const text = before?.text ?? fetched.get(`${c}/${h}`)!;
        const length = before?.entries.length ?? (JSON.parse(text) as unknown[]).length;
        const entries = desired[c].slice(at, at + length);
        at += length;
        return { hash: h, text, entries } satisfies Chunk;
      });
    });
    return { version: head.version, desired, chunks, headRevision: kv.modRevision, revision };
  }

  /** The current document, or null before the first load. */
  private current0(): Desired | null {
    try {
      return this.current().desired;
    } catch {
      return null;
    }
  }
}

interface Loaded {
  version: number;
  desired: Desired;
  chunks: Chunks;
  headRevision: number;
  revision: number;
}

function parseHead(kv: Kv): Head {
  let head: Head;
  try {
    head = JSON.parse(kv.value.toString('utf8')) as Head;
  } catch (err) {
    throw corrupt(`${kv.key} is not JSON`, err);
  }
  if (head.format_version !== ETCD_FORMAT_VERSION) {
    throw new DroverError('DROVER_STORE_FORMAT', `${kv.key} has format ${String(head.format_version)}; this drover reads format ${ETCD_FORMAT_VERSION}`);
  }
  if (typeof head.version !== 'number' || typeof head.chunks !== 'object' || head.chunks === null) throw corrupt(`${kv.key} lacks version or chunks`);
  for (const c of COLLECTIONS) head.chunks[c] ??= [];
  return head;
}

function sameHashes(hashes: readonly string[], chunks: readonly Chunk[]): boolean {
  return hashes.length === chunks.length && hashes.every((h, i) => h === chunks[i]!.hash);
}

function mapCollections<T>(fn: (c: Collection) => T): Record<Collection, T> {
  return Object.fromEntries(COLLECTIONS.map((c) => [c, fn(c)])) as Record<Collection, T>;
}

function emptyChunks(): Chunks {
  return mapCollections(() => []);
}

function corrupt(why: string, cause?: unknown): DroverError {
  return new DroverError('DROVER_STORE_CORRUPT', `etcd store: ${why}; restore the configuration from a backup`, { cause });
}

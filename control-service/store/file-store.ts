/**
 * The embedded store: a snapshot file plus a journal of the changes made since.
 *
 * - `<dir>/desired.json` (format.ts): the whole document at some version, replaced
 *   atomically (temp file in the same directory, write, fsync, rename, fsync of the
 *   directory), so it is never torn.
 * - `<dir>/desired.journal.<V>`: journal segments (journal.ts), each a list of records that
 *   starts from version V. A commit appends one record (what changed, not the document)
 *   with O_DSYNC (durable when the write returns) before it is acknowledged: a write costs
 *   what it changed.
 *
 * Compaction folds the journal into the snapshot in the background, once the journal has
 * grown to the snapshot's size (so the bytes written stay proportional to the bytes changed):
 * the segment is closed at version V (the next commit starts segment V), the document at V
 * is written as the new snapshot, and only then are the segments before V deleted. A crash
 * at any instant leaves a snapshot and the segments after it, never a gap: on load, records
 * the snapshot already holds are skipped, the others applied in order, each checked to
 * continue from the version before; the last record of a segment may be torn (its write
 * was never acknowledged) and is ignored. Loading folds whatever journal it found into a
 * fresh snapshot, and so does a clean stop: a stopped store is one file.
 */
import { constants } from 'node:fs';
import { open, readdir, readFile, rename, rm, mkdir, copyFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { Desired } from '#common/model.ts';
import { CommittingStore } from './committing-store.ts';
import type { StoreSnapshot } from './config-store.ts';
import { desiredTag } from './encode.ts';
import { decodeStoreFile, FORMAT_VERSION, storeFileChunks } from './format.ts';
import { applyRecord, decodeLine, encodeRecord, type JournalRecord } from './journal.ts';
import { emptyDesired, validateDesired } from './validate.ts';
import { acquireDirLock, type DirLock } from './dir-lock.ts';

export const STORE_FILE = 'desired.json';
export const JOURNAL_PREFIX = 'desired.journal.';
const TEMP_MARK = '.tmp-';
/** The journal is compacted once it is larger than the snapshot, and at least this large. */
const MIN_COMPACT_BYTES = 256 * 1024;
/** After a failed compaction, the next attempt waits this long. */
const COMPACT_RETRY_MS = 10_000;

export interface FileStoreOptions {
  dir: string;
  log: Logger;
  /** Journal size that triggers a compaction at the least (tests make it small). */
  minCompactBytes?: number;
}

interface Segment {
  base: number;
  handle: FileHandle;
}

export class FileConfigStore extends CommittingStore {
  private readonly file: string;
  private lock: DirLock | null = null;
  private tempSeq = 0;
  /** The segment commits append to; opened by the first commit after load or a compaction. */
  private segment: Segment | null = null;
  /** Bytes in the journal since the snapshot (all segments). */
  private journalBytes = 0;
  /** Size of the snapshot file last written or read. */
  private snapshotBytes = 0;
  private compacting: Promise<void> | null = null;
  private compactAfter = 0;
  /** An append failed: the journal may hold a record that was not acknowledged. */
  private unsure = false;

  constructor(private readonly options: FileStoreOptions) {
    super(options.log.child({ subsystem: 'store' }));
    this.file = join(options.dir, STORE_FILE);
  }

  protected async read(): Promise<{ version: number; desired: unknown }> {
    await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
    this.lock = await acquireDirLock(this.options.dir);
    try {
      return await this.readLocked();
    } catch (err) {
      await this.release();
      throw err;
    }
  }

  private async readLocked(): Promise<{ version: number; desired: unknown }> {
    await this.removeTempFiles();
    let text: string | null;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new DroverError('DROVER_STORE_READ_FAILED', `could not read ${this.file}`, { cause: err, detail: { file: this.file } });
      }
      text = null;
    }
    let version = 0;
    let desired: Desired | undefined;
    let readFormat = FORMAT_VERSION;
    if (text !== null) {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (err) {
        // Renames are atomic, so this is damage from outside drover: refuse rather than start empty.
        throw new DroverError('DROVER_STORE_CORRUPT', `${this.file} is not valid JSON; restore it from a backup`, {
          cause: err,
          detail: { file: this.file },
        });
      }
      const decoded = decodeStoreFile(raw, this.file);
      desired = validateDesired(decoded.desired);
      version = decoded.version;
      readFormat = decoded.readFormat;
      this.snapshotBytes = Buffer.byteLength(text);
    }
    const replayed = await this.replay(version, desired);
    if (readFormat !== FORMAT_VERSION) {
      const backup = `${this.file}.format-${readFormat}.bak`;
      await copyFile(this.file, backup);
      this.log.info({ from: readFormat, to: FORMAT_VERSION, backup }, 'store file upgraded');
    }
    if (replayed.segments.length > 0 || readFormat !== FORMAT_VERSION) {
      // Fold what the journal holds into the snapshot: the store starts from one file.
      await this.writeSnapshot(replayed.version, replayed.desired ?? emptyDesired());
      await this.removeSegments(replayed.segments);
    }
    return { version: replayed.version, desired: replayed.desired };
  }

  /** Applies the journal segments found in the directory to the snapshot. */
  private async replay(version: number, desired: Desired | undefined): Promise<{ version: number; desired: Desired | undefined; segments: string[] }> {
    const segments = (await readdir(this.options.dir))
      .filter((name) => name.startsWith(JOURNAL_PREFIX) && /^\d+$/.test(name.slice(JOURNAL_PREFIX.length)))
      .sort((a, b) => Number(a.slice(JOURNAL_PREFIX.length)) - Number(b.slice(JOURNAL_PREFIX.length)));
    if (segments.length === 0) return { version, desired, segments };
    let doc = (desired ?? emptyDesired()) as unknown as Parameters<typeof applyRecord>[0];
    let last: JournalRecord | null = null;
    let applied = 0;
    for (const name of segments) {
      const path = join(this.options.dir, name);
      const text = await readFile(path, 'utf8');
      const lines = text.split('\n');
      // The text after the last newline is a line whose write did not finish.
      const torn = lines.pop()!;
      if (torn !== '') this.log.warn({ file: name, bytes: torn.length }, 'unacknowledged journal record ignored (torn)');
      for (let i = 0; i < lines.length; i++) {
        const record = decodeLine(lines[i]!);
        if (record === null) {
          // A damaged last line is a write that did not finish; anywhere else it is damage.
          if (i === lines.length - 1) {
            this.log.warn({ file: name, line: i + 1 }, 'unacknowledged journal record ignored (damaged last line)');
            break;
          }
          throw corrupt(path, `line ${i + 1} is damaged`);
        }
        if (record.to <= version) continue; // already in the snapshot
        if (record.from !== version) throw corrupt(path, `line ${i + 1} continues version ${record.from}, but the store is at ${version}`);
        try {
          doc = applyRecord(doc, record);
        } catch (err) {
          throw corrupt(path, `line ${i + 1}: ${(err as Error).message}`);
        }
        version = record.to;
        last = record;
        applied++;
      }
    }
    if (last === null) return { version, desired, segments };
    const replayed = validateDesired(doc);
    if (desiredTag(replayed) !== last.tag) throw corrupt(this.options.dir, `the journal leads to a document whose tag is not the one recorded at version ${version}`);
    this.log.info({ version, records: applied, segments: segments.length }, 'store journal replayed');
    return { version, desired: replayed, segments };
  }

  protected async persist(next: StoreSnapshot, previous: StoreSnapshot): Promise<void> {
    const line = Buffer.from(encodeRecord(previous.version, next.version, next.tag, previous.desired, next.desired));
    if (this.unsure) await this.reset(previous);
    if (!this.segment) {
      const base = previous.version;
      // O_DSYNC: each write returns once its bytes are durable — one call into the thread
      // pool per record instead of a write then an fdatasync (two queue waits under load).
      const handle = await open(join(this.options.dir, `${JOURNAL_PREFIX}${base}`), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_APPEND | constants.O_DSYNC, 0o600);
      try {
        await this.syncDir(); // the new file's name is durable before a record in it is acknowledged
      } catch (err) {
        await handle.close();
        throw err;
      }
      this.segment = { base, handle };
    }
    const { handle } = this.segment;
    try {
      for (let at = 0; at < line.length; ) at += (await handle.write(line, at, line.length - at)).bytesWritten;
    } catch (err) {
      // The record was not acknowledged, but it may be on disk (whole or torn) and would be
      // replayed; the next commit reuses its version. So the journal is started over first.
      this.segment = null;
      this.unsure = true;
      await handle.close().catch(() => undefined);
      throw err;
    }
    this.journalBytes += line.length;
    this.maybeCompact(next);
  }

  /**
   * After a failed append: the acknowledged document becomes the snapshot and every segment
   * goes, so no record that was not acknowledged can be replayed.
   */
  private async reset(now: StoreSnapshot): Promise<void> {
    while (this.compacting) await this.compacting;
    await this.fold(now);
    this.log.info({ version: now.version }, 'store journal started over after a failed write');
  }

  /** Writes `now` as the snapshot and removes every segment (no commit may run meanwhile). */
  private async fold(now: StoreSnapshot): Promise<void> {
    const segments = (await readdir(this.options.dir)).filter((name) => name.startsWith(JOURNAL_PREFIX));
    await this.writeSnapshot(now.version, now.desired);
    await this.removeSegments(segments);
    this.journalBytes = 0;
    this.unsure = false;
  }

  /** Resolves once no compaction is running (tests look at the directory then). */
  async compacted(): Promise<void> {
    while (this.compacting) await this.compacting;
  }

  /** Starts a compaction at `at` (just made durable) when the journal is large enough. */
  private maybeCompact(at: StoreSnapshot): void {
    if (this.compacting || this.journalBytes < Math.max(this.options.minCompactBytes ?? MIN_COMPACT_BYTES, this.snapshotBytes)) return;
    if (Date.now() < this.compactAfter) return;
    const closing = this.segment;
    this.segment = null; // the next commit starts segment `at.version`
    this.compacting = this.compact(at, closing, this.journalBytes).finally(() => {
      this.compacting = null;
    });
  }

  /** `folded`: the journal's bytes up to `at` (what the new snapshot makes unneeded). */
  private async compact(at: StoreSnapshot, closing: Segment | null, folded: number): Promise<void> {
    const started = performance.now();
    try {
      await closing?.handle.close();
      const segments = (await readdir(this.options.dir)).filter((name) => name.startsWith(JOURNAL_PREFIX) && Number(name.slice(JOURNAL_PREFIX.length)) < at.version);
      await this.writeSnapshot(at.version, at.desired);
      await this.removeSegments(segments);
      this.journalBytes = Math.max(0, this.journalBytes - folded);
      this.log.info({ version: at.version, bytes: this.snapshotBytes, ms: Math.round(performance.now() - started) }, 'store journal compacted');
    } catch (err) {
      // The journal still holds everything; compaction is tried again later.
      this.compactAfter = Date.now() + COMPACT_RETRY_MS;
      this.log.error({ err, version: at.version }, 'store compaction failed');
    }
  }

  /** Replaces the snapshot file atomically with the document at `version`. */
  private async writeSnapshot(version: number, desired: Desired): Promise<void> {
    const temp = `${this.file}${TEMP_MARK}${process.pid}-${++this.tempSeq}`;
    let bytes = 0;
    try {
      const handle = await open(temp, 'w', 0o600);
      try {
        for (const chunk of storeFileChunks(version, desired)) {
          for (let at = 0; at < chunk.length; ) at += (await handle.write(chunk, at, chunk.length - at)).bytesWritten;
          bytes += chunk.length;
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.file);
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
    await this.syncDir();
    this.snapshotBytes = bytes;
  }

  private async removeSegments(names: readonly string[]): Promise<void> {
    for (const name of names) await rm(join(this.options.dir, name), { force: true });
    if (names.length > 0) await this.syncDir();
  }

  private async syncDir(): Promise<void> {
    const dir = await open(this.options.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /** After the last commit: folds the journal into the snapshot, then unlocks. */
  protected override async release(): Promise<void> {
    try {
      while (this.compacting) await this.compacting;
      const segment = this.segment;
      this.segment = null;
      await segment?.handle.close();
      if ((this.journalBytes > 0 || this.unsure) && this.lock) await this.fold(this.current());
    } finally {
      await this.lock?.release();
      this.lock = null;
    }
  }

  private async removeTempFiles(): Promise<void> {
    for (const name of await readdir(this.options.dir)) {
      if (!name.startsWith(STORE_FILE + TEMP_MARK)) continue;
      await rm(join(this.options.dir, name), { force: true });
      this.log.warn({ file: name }, 'unacknowledged temp file removed');
    }
  }
}

function corrupt(path: string, why: string): DroverError {
  return new DroverError('DROVER_STORE_CORRUPT', `${path}: ${why}; restore the data directory from a backup`, { detail: { file: path } });
}

/**
 * The control service's store of desired configuration (docs/DESIGN.md §3), as one interface so
 * an etcd store can follow the embedded file store.
 *
 * A store keeps one immutable `Desired` document. `update(fn)` is serialized: `fn` sees the
 * newest document, returns the next one (or null for "no change"), and the store validates
 * the whole result before it commits. A write is acknowledged (the promise resolves) only
 * once it is durable.
 */
import type { Desired } from '#common/model.ts';

export interface StoreSnapshot {
  /** Counts committed changes; never goes back, survives restarts. */
  readonly version: number;
  /** A hash of the saved document: equal documents have equal tags (`X-Configuration-Tag`). */
  readonly tag: string;
  /** Deeply frozen: change it by returning a new document from `update`. */
  readonly desired: Desired;
}

export interface UpdateContext {
  /** The version this change will commit as; unique per change, so usable as a fencing token. */
  readonly version: number;
  /**
   * True when `tag` is the tag of the document `fn` is looking at. Conditional writes
   * (`X-If-Configuration-Matches`) check it inside `fn`, so check and write are one step.
   */
  tagMatches(tag: string): boolean;
}

/** Returns the next document, or null/undefined (or the same document) for "no change". */
export type Updater = (desired: Desired, ctx: UpdateContext) => Desired | null | undefined;

export interface ConfigStore {
  /** Reads the stored document (creating an empty one the first time). Call once, first. */
  load(): Promise<StoreSnapshot>;
  /** The newest committed snapshot, without I/O. */
  current(): StoreSnapshot;
  /**
   * Applies `fn` after every earlier update, validates the result with zod, commits it durably
   * and resolves with the committed snapshot. When `fn` throws, or the result does not
   * validate (a `ZodError` whose issues carry the paths), nothing changes and the promise
   * rejects with that error. Concurrent updates may share one durable write.
   */
  update(fn: Updater): Promise<StoreSnapshot>;
  /** Called synchronously after each commit, before the updaters' promises resolve. */
  onCommit(listener: (snapshot: StoreSnapshot) => void): void;
  /** Waits for queued updates, then releases the store. */
  close(): Promise<void>;
}

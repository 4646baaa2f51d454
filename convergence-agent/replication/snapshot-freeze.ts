/**
 * The opt-in freeze during the interval snapshot (docs/DESIGN.md §47, policy
 * `freeze_during_snapshot`): the containers that mount a dataset are paused (Docker's
 * `pause`, the cgroup freezer) only while its `zfs snapshot` runs, so nothing writes into the
 * dataset while zfs-fuse suspends its intent log — the condition of zfs-fuse's 952 ms
 * `zil_clean` stall (§45). Never leaves an application frozen:
 *
 * - the containers it is about to pause are written to a journal file first, and each is
 *   taken off once it is thawed; `recover()` (the agent's start) thaws what a dead agent
 *   left there;
 * - every path out of `around` thaws, the snapshot's failure included;
 * - a hard deadline thaws while the snapshot still runs (it then runs unfrozen);
 * - a thaw that fails stays in the journal and is tried again on a timer (1 s doubling to
 *   10 s) until it succeeds, and by the next `around`.
 *
 * Freezing is a help, never a condition: when a container cannot be paused, the snapshot runs
 * anyway (with whatever could be paused thawed first).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { Logger } from '#common/log.ts';

/** What the freezer needs from the container engine (docker.ts). */
export interface FreezeRuntime {
  pause(containerId: string): Promise<void>;
  /** Thaws; a container that is not paused (or gone) is fine. */
  unpause(containerId: string): Promise<void>;
}

/** The longest an application stays frozen for one snapshot (a snapshot takes ~40–100 ms, a stalled one ~1 s). */
export const FREEZE_DEADLINE_MS = 2_000;

const JournalFile = z.object({ frozen: z.array(z.string().min(1).max(128)).max(10_000) });

export interface SnapshotFreezerDeps {
  runtime: FreezeRuntime;
  /** The running containers that mount `datasetId` on this node (none: nothing to freeze). */
  containersOf(datasetId: string): Promise<string[]>;
  /** The journal of paused containers (the agent's state dir); in memory only when null. */
  journal: string | null;
  log: Logger;
  deadlineMs?: number;
}

export class SnapshotFreezer {
  /** Containers paused and not yet known thawed, as the journal holds them. */
  private readonly frozen = new Set<string>();
  /** Containers a running `around` froze, and how many do (two datasets of one application). */
  private readonly active = new Map<string, number>();
  /** Writes of the journal, one after another. */
  private writing: Promise<void> = Promise.resolve();
  private readonly deadlineMs: number;
  private retry: { timer: NodeJS.Timeout; delayMs: number } | null = null;
  private closed = false;

  constructor(private readonly deps: SnapshotFreezerDeps) {
    this.deadlineMs = deps.deadlineMs ?? FREEZE_DEADLINE_MS;
  }

  /**
   * Runs `snapshot` with `datasetId`'s containers paused, and thaws them when it ends, when it
   * fails, or at the deadline, whichever comes first. Returns (or throws) what `snapshot` does.
   */
  async around<T>(datasetId: string, snapshot: () => Promise<T>): Promise<T> {
    const { log } = this.deps;
    if (this.stale().length > 0) await this.thaw(this.stale(), 'left frozen before');
    let ids: string[] = [];
    try {
      ids = [...new Set(await this.deps.containersOf(datasetId))];
    } catch (err) {
      log.warn({ err, datasetId }, 'snapshot freeze skipped: containers unknown');
    }
    if (ids.length === 0) return snapshot();
    let paused: string[] = [];
    // Already frozen by another running freeze (a second snapshot of the dataset overlapping
    // it, or two datasets of one application): not paused again (Docker refuses: "already
    // paused"), and kept frozen until the last of them thaws.
    const toPause = ids.filter((id) => !this.active.has(id));
    for (const id of ids) this.active.set(id, (this.active.get(id) ?? 0) + 1);
    const release = (): void => {
      for (const id of ids) {
        const n = (this.active.get(id) ?? 1) - 1;
        if (n > 0) this.active.set(id, n);
        else this.active.delete(id);
      }
    };
    try {
      for (const id of ids) this.frozen.add(id);
      await this.save();
      const results = await Promise.allSettled(toPause.map((id) => this.deps.runtime.pause(id)));
      paused = toPause.filter((_, i) => results[i]!.status === 'fulfilled');
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (err) {
      // Paused none, some or all: thaw every one of them (a pause that failed may still have
      // taken effect) and take the snapshot unfrozen.
      log.warn({ err, datasetId, containers: ids }, 'snapshot freeze failed; snapshot taken unfrozen');
      release();
      await this.thaw(this.mine(ids), 'freeze failed');
      return snapshot();
    }
    const began = performance.now();
    let thawing: Promise<void> | null = null;
    const thawOnce = (why: string): Promise<void> => {
      if (thawing) return thawing;
      release();
      return (thawing = this.thaw(this.mine(ids), why));
    };
    const deadline = setTimeout(() => {
      log.warn({ datasetId, containers: paused, deadlineMs: this.deadlineMs }, 'snapshot freeze deadline passed; thawed before the snapshot ended');
      void thawOnce('deadline');
    }, this.deadlineMs);
    try {
      return await snapshot();
    } finally {
      clearTimeout(deadline);
      await thawOnce('snapshot ended');
      log.debug({ datasetId, containers: paused, frozenMs: Math.round(performance.now() - began) }, 'snapshot freeze ended');
    }
  }

  /** Thaws whatever the journal says a previous agent froze and did not thaw (the agent's start). */
  async recover(): Promise<string[]> {
    const left = await this.load();
    for (const id of left) this.frozen.add(id);
    if (left.length === 0) return [];
    this.deps.log.warn({ containers: left }, 'thawing containers a previous agent froze for a snapshot');
    await this.thaw(left, 'agent start');
    return left.filter((id) => !this.frozen.has(id));
  }

  /** Containers paused and not known thawed (a test's and a status's view). */
  get pending(): string[] {
    return [...this.frozen];
  }

  /** Stops the retry timer (the agent's stop). What is still frozen stays in the journal for the next start. */
  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry.timer);
    this.retry = null;
  }

  private async thaw(ids: readonly string[], why: string): Promise<void> {
    const results = await Promise.allSettled(ids.map((id) => this.deps.runtime.unpause(id)));
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') this.frozen.delete(ids[i]!);
      else this.deps.log.error({ err: r.reason, containerId: ids[i], why }, 'thaw after a snapshot freeze failed; kept to retry');
    });
    // The journal is kept even when it cannot be written: the thaw itself is what matters here.
    await this.save().catch((err: unknown) => this.deps.log.error({ err }, 'snapshot freeze journal not written'));
    if (this.stale().length > 0) this.retryLater();
  }

  /** Thaws what is still frozen on a timer, 1 s doubling to 10 s, until nothing is. */
  private retryLater(): void {
    if (this.closed || this.retry) return;
    const delayMs = this.retryDelayMs;
    const timer = setTimeout(() => {
      this.retry = null;
      this.retryDelayMs = Math.min(10_000, delayMs * 2);
      void this.thaw(this.stale(), 'retry').then(() => {
        if (this.stale().length === 0) this.retryDelayMs = 1_000;
      });
    }, delayMs);
    timer.unref();
    this.retry = { timer, delayMs };
  }

  private retryDelayMs = 1_000;

  /** Of `ids`, those no other running `around` still wants frozen (it thaws them itself). */
  private mine(ids: readonly string[]): string[] {
    return ids.filter((id) => !this.active.has(id));
  }

  /** Frozen and no running `around` wants them so: to thaw. */
  private stale(): string[] {
    return [...this.frozen].filter((id) => !this.active.has(id));
  }

  private save(): Promise<void> {
    const { journal } = this.deps;
    if (journal === null) return Promise.resolve();
    const text = JSON.stringify({ frozen: [...this.frozen] });
    const next = this.writing.then(async () => {
      await mkdir(dirname(journal), { recursive: true });
      const temp = `${journal}.tmp`;
      await writeFile(temp, text);
      await rename(temp, journal);
    });
    // A failed write fails this freeze (it is not paused without its record); later writes go on.
    this.writing = next.catch(() => {});
    return next;
  }

  private async load(): Promise<string[]> {
    const { journal } = this.deps;
    if (journal === null) return [];
    try {
      const parsed = JournalFile.safeParse(JSON.parse(await readFile(journal, 'utf8')));
      if (parsed.success) return parsed.data.frozen;
      this.deps.log.error({ journal }, 'snapshot freeze journal unreadable; nothing to thaw from it');
      return [];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      if (err instanceof SyntaxError) {
        this.deps.log.error({ journal }, 'snapshot freeze journal unreadable; nothing to thaw from it');
        return [];
      }
      throw err;
    }
  }
}

/**
 * `containersOf` for the agent: the running containers of this node (drover's label) that
 * bind-mount the dataset's mountpoint or a path under it. The mountpoint is read once per
 * dataset (it is `<mount_root>/<dataset id>` for as long as the agent runs).
 */
export function mountingContainers(deps: {
  mountpointOf(datasetId: string): Promise<string | null>;
  listContainers(): Promise<Array<{ id: string; running: boolean; mountSources: string[] }>>;
}): (datasetId: string) => Promise<string[]> {
  const mountpoints = new Map<string, string>();
  return async (datasetId) => {
    let path = mountpoints.get(datasetId) ?? null;
    if (path === null) {
      path = await deps.mountpointOf(datasetId);
      if (path === null) return [];
      mountpoints.set(datasetId, path);
    }
    const under = `${path.replace(/\/+$/, '')}/`;
    return (await deps.listContainers()).filter((c) => c.running && c.mountSources.some((s) => s === path || s.startsWith(under))).map((c) => c.id);
  };
}

/**
 * The ZFS adapter: the only code that runs `zfs` (through a CommandRunner, argv from
 * argv.ts). Implements DatasetStore and SnapshotStore against zfs-fuse 0.7 and OpenZFS 2.x.
 * Errors are classified here once (zfs-errors.ts); EBUSY is retried with backoff because
 * zfs-fuse reports it transiently after a mount or receive.
 */
import { backoffDelay, type Backoff } from '#common/backoff.ts';
import { systemClock, type Clock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import { silentLogger } from '#common/log.ts';
import { DroverError, isDroverError } from '#common/errors.ts';
import { argv, parseDatasets, parseGet, parseSnapshots, READONLY_PROPERTY, REJOINED_PROPERTY, quotaValue, type Argv } from './argv.ts';
import { execaRunner, type CommandRunner } from './command.ts';
import { assertDatasetId, assertPoolName, assertSnapshotName, assertHoldTag, datasetPath, divergedPath, HOLD_TAGS, HOLD_TAGS_PROPERTY, isDroverSnapshotName, parseDivergedPath } from './names.ts';
import { zfsError } from './zfs-errors.ts';
import { detectFeatures, type ZfsFeatures } from './zfs-features.ts';
import { spawnReceive, spawnSend, type SendRequest, type ZfsStreamProcess } from './zfs-stream.ts';
import type { CreateDatasetOptions, DatasetStore, DivergedCopyInfo, SnapshotStore, ZfsDatasetInfo, ZfsSnapshotInfo } from './types.ts';

export interface ZfsStoreOptions {
  pool: string;
  runner?: CommandRunner;
  /** When set, datasets mount at `<mountRoot>/<dataset_id>`; otherwise they inherit ZFS's default. */
  mountRoot?: string | null;
  /** Attempts for EBUSY (destroy, unmount); default 8, backoff 50 ms doubling to 1 s. */
  busyAttempts?: number;
  /** Waits between busy retries; default the system clock. */
  clock?: Clock;
  log?: Logger;
  /** Path of the zfs binary; default `zfs`. */
  zfsPath?: string;
}

/** EBUSY retries: 50 ms doubling to 1 s. */
const BUSY_RETRY: Backoff = { initialMs: 50, capMs: 1_000 };

/** An incremental stream with nothing in it: its BEGIN and END records, 312 bytes each. */
const EMPTY_INCREMENTAL_BYTES = 2 * 312;

export class ZfsStore implements DatasetStore, SnapshotStore {
  readonly pool: string;
  readonly runner: CommandRunner;
  readonly zfsPath: string;
  private readonly mountRoot: string | null;
  private readonly busyAttempts: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private featuresProbe: Promise<ZfsFeatures> | null = null;
  private writtenSupported: boolean | null = null;

  constructor(options: ZfsStoreOptions) {
    assertPoolName(options.pool);
    this.pool = options.pool;
    this.runner = options.runner ?? execaRunner;
    this.mountRoot = options.mountRoot ?? null;
    this.busyAttempts = options.busyAttempts ?? 8;
    this.clock = options.clock ?? systemClock;
    this.log = (options.log ?? silentLogger()).child({ subsystem: 'zfs', pool: options.pool });
    this.zfsPath = options.zfsPath ?? 'zfs';
  }

  /** Runs `zfs <args>`; resolves with stdout, throws a classified DroverError on failure. */
  async zfs(args: Argv, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<string> {
    const started = this.clock.monotonic();
    const result = await this.runner.run(this.zfsPath, args, { timeoutMs: options.timeoutMs ?? 120_000, signal: options.signal });
    this.log.debug({ args, exitCode: result.exitCode, ms: Math.round(this.clock.monotonic() - started) }, 'zfs command ran');
    if (result.exitCode === 0) return result.stdout;
    throw zfsError({ argv: ['zfs', ...args], exitCode: result.exitCode, signal: result.signal, stderr: result.stderr });
  }

  /** Runs `zfs <args>`, retrying DROVER_ZFS_BUSY with capped exponential backoff. */
  private async zfsRetryingBusy(args: Argv): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.zfs(args);
      } catch (err) {
        if (!isDroverError(err, 'DROVER_ZFS_BUSY') || attempt >= this.busyAttempts) throw err;
        this.log.debug({ args, attempt }, 'zfs busy, retrying');
        await this.clock.sleep(backoffDelay(BUSY_RETRY, attempt));
      }
    }
  }

  /** Creates `<pool>/drover` when missing. Idempotent. */
  async ensureRoot(): Promise<void> {
    try {
      await this.zfs(argv.createRoot(this.pool));
    } catch (err) {
      if (!isDroverError(err, 'DROVER_ZFS_EXISTS')) throw await this.poolMissingOr(err);
    }
  }

  private async poolMissingOr(err: unknown): Promise<unknown> {
    if (!isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) return err;
    try {
      await this.zfs(argv.poolName(this.pool));
      return err;
    } catch {
      return new DroverError('DROVER_ZFS_POOL_NOT_FOUND', `pool ${this.pool} does not exist`, { detail: { pool: this.pool }, cause: err });
    }
  }

  async listDatasets(): Promise<ZfsDatasetInfo[]> {
    try {
      return parseDatasets(this.pool, await this.zfs(argv.getDatasets(this.pool)));
    } catch (err) {
      // No `<pool>/drover` yet means no drover datasets; a missing pool is an error (unknown ≠ empty).
      const why = await this.poolMissingOr(err);
      if (why === err && isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) return [];
      throw why;
    }
  }

  async listAll(): Promise<{ datasets: ZfsDatasetInfo[]; snapshots: Record<string, ZfsSnapshotInfo[]>; rejoined: DivergedCopyInfo[] }> {
    let stdout: string;
    try {
      stdout = await this.zfs(argv.getAll(this.pool));
    } catch (err) {
      const why = await this.poolMissingOr(err);
      if (why === err && isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) return { datasets: [], snapshots: {}, rejoined: [] };
      throw why;
    }
    const datasets = parseDatasets(this.pool, stdout);
    const snapshots: Record<string, ZfsSnapshotInfo[]> = {};
    for (const d of datasets) snapshots[d.datasetId] = parseSnapshots(this.pool, d.datasetId, stdout);
    return { datasets, snapshots, rejoined: this.parseRejoined(stdout) };
  }

  async getDataset(datasetId: string): Promise<ZfsDatasetInfo | null> {
    const args = argv.getDataset(this.pool, datasetId);
    try {
      return parseDatasets(this.pool, await this.zfs(args))[0] ?? null;
    } catch (err) {
      const why = await this.poolMissingOr(err);
      if (why === err && isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) return null;
      throw why;
    }
  }

  /**
   * `getDataset` and `listSnapshots` in one `zfs get -d 1`: the dataset (null when it does not
   * exist) and its drover snapshots, oldest first ([] then). One zfs command instead of two for
   * each replication step's look at its replica (docs/DESIGN.md §40).
   */
  async getDatasetState(datasetId: string): Promise<{ dataset: ZfsDatasetInfo | null; snapshots: ZfsSnapshotInfo[] }> {
    const args = argv.getDatasetState(this.pool, datasetId);
    let stdout: string;
    try {
      stdout = await this.zfs(args);
    } catch (err) {
      const why = await this.poolMissingOr(err);
      if (why === err && isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) return { dataset: null, snapshots: [] };
      throw why;
    }
    const dataset = parseDatasets(this.pool, stdout).find((d) => d.datasetId === datasetId) ?? null;
    return { dataset, snapshots: dataset === null ? [] : parseSnapshots(this.pool, datasetId, stdout) };
  }

  private async mustGet(datasetId: string): Promise<ZfsDatasetInfo> {
    const info = await this.getDataset(datasetId);
    if (info === null) {
      throw new DroverError('DROVER_DATASET_NOT_FOUND', `dataset ${datasetId} does not exist in ${this.pool}`, {
        detail: { datasetId, pool: this.pool },
      });
    }
    return info;
  }

  async createDataset(datasetId: string, options: CreateDatasetOptions): Promise<ZfsDatasetInfo> {
    const mountpoint = this.mountpointOf(datasetId);
    const args = argv.create(this.pool, datasetId, options.maximumSize, mountpoint);
    const existing = await this.getDataset(datasetId);
    if (existing) {
      if (existing.refquota !== options.maximumSize) await this.setMaximumSize(datasetId, options.maximumSize);
      return this.mustGet(datasetId);
    }
    await this.ensureRoot();
    try {
      await this.zfs(args);
    } catch (err) {
      if (!isDroverError(err, 'DROVER_ZFS_EXISTS')) throw err; // lost a race: fine, it exists
    }
    return this.mustGet(datasetId);
  }

  async destroyDataset(datasetId: string): Promise<void> {
    const args = argv.destroy(this.pool, datasetId);
    try {
      // drover's own holds would block `destroy -r` forever. zfs-fuse cannot list tags: the
      // fixed ones are a known vocabulary, the per-replica ones are recorded on the dataset.
      const tags = [...Object.values(HOLD_TAGS), ...(await this.recordedHoldTags(datasetId))];
      for (const snap of await this.listSnapshots(datasetId)) {
        if (snap.userrefs === 0) continue;
        for (const tag of tags) await this.release(datasetId, snap.snapshot, tag);
      }
      await this.zfsRetryingBusy(args);
      this.log.info({ datasetId }, 'dataset destroyed');
    } catch (err) {
      if (!isDroverError(err, 'DROVER_ZFS_NOT_FOUND') && !isDroverError(err, 'DROVER_DATASET_NOT_FOUND')) throw err;
    }
  }

  async setReadonly(datasetId: string, readonly: boolean): Promise<void> {
    const value = readonly ? 'on' : 'off';
    const set = argv.set(this.pool, datasetId, 'readonly', value);
    const mirror = argv.set(this.pool, datasetId, READONLY_PROPERTY, value);
    await this.notFoundAsDataset(datasetId, async () => {
      await this.zfs(set);
      await this.zfs(mirror);
    });
  }

  async setMaximumSize(datasetId: string, bytes: number | null): Promise<void> {
    const args = argv.set(this.pool, datasetId, 'refquota', quotaValue(bytes));
    await this.notFoundAsDataset(datasetId, () => this.zfs(args));
  }

  async setAside(datasetId: string, generation: number): Promise<void> {
    const kept = divergedPath(this.pool, datasetId, generation);
    if ((await this.listDiverged()).some((c) => c.name === kept)) return;
    await this.zfs(argv.createDivergedRoot(this.pool)).catch((err: unknown) => {
      if (!isDroverError(err, 'DROVER_ZFS_EXISTS')) throw err;
    });
    await this.unmount(datasetId);
    await this.notFoundAsDataset(datasetId, () => this.zfs(argv.setAside(this.pool, datasetId, generation)));
    await this.zfs(argv.settleDiverged(this.pool, datasetId, generation, 'mountpoint', 'none'));
    await this.zfs(argv.settleDiverged(this.pool, datasetId, generation, 'readonly', 'on'));
    this.log.warn({ datasetId, generation, kept }, 'diverged copy set aside');
  }

  async rejoin(datasetId: string, generation: number, promoted: string): Promise<boolean> {
    assertSnapshotName(promoted);
    const snapshots = await this.listSnapshots(datasetId);
    const base = snapshots.find((s) => s.snapshot === promoted);
    if (base === undefined) return false;
    // zfs-fuse 0.7 has neither `written@<snap>` nor `zfs diff`: an incremental stream from the
    // promoted snapshot that holds only its BEGIN and END records says nothing was written.
    // Every later snapshot is checked, then the filesystem itself through a snapshot of it.
    const check = `drover-rejoin-g${generation}`;
    if (!snapshots.some((s) => s.snapshot === check)) await this.createSnapshot(datasetId, check);
    const later = [...snapshots.filter((s) => s.createtxg > base.createtxg && s.snapshot !== check).map((s) => s.snapshot), check];
    for (const snapshot of later) {
      const bytes = await this.streamBytes(datasetId, snapshot, promoted);
      if (bytes > EMPTY_INCREMENTAL_BYTES) {
        // The check snapshot stays: it goes aside with the copy (nothing here is destroyed).
        this.log.info({ datasetId, promoted, snapshot, bytes }, 'copy holds writes after the promoted snapshot');
        return false;
      }
    }
    // Nothing after the promoted snapshot. The later snapshots hold nothing either, but they are
    // not drover's to destroy (docs/DESIGN.md §18): the whole copy moves aside, a clone of its
    // promoted snapshot takes its place, and `promote` gives that clone every snapshot up to the
    // promoted one — the kept copy keeps only the later ones. The replica is then what the new
    // primary's next incremental applies to, and nothing was destroyed.
    await this.setAside(datasetId, generation);
    await this.zfs(argv.cloneBack(this.pool, datasetId, generation, promoted, this.mountpointOf(datasetId)));
    await this.zfs(argv.promote(this.pool, datasetId));
    // A replica is never mounted (as after a receive).
    await this.unmount(datasetId).catch(() => undefined);
    await this.zfs(argv.setRejoined(this.pool, datasetId, generation));
    await this.setReadonly(datasetId, true);
    this.log.warn({ datasetId, generation, promoted, keptAside: later, kept: divergedPath(this.pool, datasetId, generation) }, 'copy held nothing after the promoted snapshot: rejoins as a replica; its later snapshots kept aside');
    return true;
  }

  /** Removes the `drover:rejoined` mark: the copy is an ordinary replica again. */
  async clearRejoined(datasetId: string): Promise<void> {
    await this.notFoundAsDataset(datasetId, () => this.zfs(argv.clearRejoined(this.pool, datasetId)));
    this.log.info({ datasetId }, 'rejoined mark cleared');
  }

  /** The size of `zfs send -i <base> <snapshot>`, counted, the stream itself dropped. */
  private async streamBytes(datasetId: string, snapshot: string, base: string): Promise<number> {
    const proc = this.send({ datasetId, snapshot, base });
    let bytes = 0;
    proc.output!.on('data', (chunk: Buffer) => (bytes += chunk.length));
    await Promise.all([proc.done, new Promise<void>((resolve) => proc.output!.once('end', () => resolve()))]);
    return bytes;
  }

  async listDiverged(): Promise<DivergedCopyInfo[]> {
    const [kept, rejoined] = await Promise.all([this.listKept(), this.listRejoined()]);
    return [...kept, ...rejoined];
  }

  /** Also the pool's check for both lists: a missing pool fails here as DROVER_ZFS_POOL_NOT_FOUND. */
  private async listRejoined(): Promise<DivergedCopyInfo[]> {
    let stdout: string;
    try {
      stdout = await this.zfs(argv.getRejoined(this.pool));
    } catch (err) {
      throw await this.poolMissingOr(err);
    }
    return this.parseRejoined(stdout);
  }

  /** The copies marked `drover:rejoined` in a `zfs get` of `<pool>/drover`'s children (its snapshots' inherited values skipped). */
  private parseRejoined(stdout: string): DivergedCopyInfo[] {
    const out: DivergedCopyInfo[] = [];
    for (const [name, props] of parseGet(stdout)) {
      const value = props.get(REJOINED_PROPERTY);
      const datasetId = name.slice(`${this.pool}/drover/`.length);
      if (value === undefined || !/^\d{1,15}$/.test(value) || !name.startsWith(`${this.pool}/drover/`) || datasetId.includes('/') || datasetId.includes('@')) continue;
      out.push({ rejoined: true, datasetId, name, generation: Number(value), usedBytes: 0 });
    }
    return out;
  }

  /**
   * The copies kept under `<pool>/drover-diverged/` alone (one zfs command; [] when there are
   * none): discovery reads the rejoined ones with `listAll`, in its one listing of the pool.
   */
  listKeptDiverged(): Promise<DivergedCopyInfo[]> {
    return this.listKept();
  }

  private async listKept(): Promise<DivergedCopyInfo[]> {
    let stdout: string;
    try {
      stdout = await this.zfs(argv.getDiverged(this.pool));
    } catch (err) {
      // No `<pool>/drover-diverged`: nothing set aside, the usual case. No check of the pool
      // here (a zfs command more every pass): listRejoined, run beside this, reads `<pool>/drover`
      // and reports a missing pool.
      if (isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) return [];
      throw err;
    }
    const out: DivergedCopyInfo[] = [];
    for (const [name, props] of parseGet(stdout)) {
      const parsed = parseDivergedPath(this.pool, name);
      if (parsed === null) continue;
      out.push({ ...parsed, name, usedBytes: Number(props.get('used') ?? 0) || 0 });
    }
    return out;
  }

  /**
   * Writable and mounted in one step (a migration's target at handoff: every ms is downtime).
   * zfs-fuse sets one property per command and each waits for a transaction group, so the
   * two `set`s and a `mount -o rw` run side by side (concurrent commands share the sync)
   * instead of three in a row. The mount is writable whichever lands first. All must succeed;
   * when `readonly=off` fails but the mirror landed, the mirror is put back to `on` so the
   * planner sees a read-only dataset and tries again (never a mirror that says writable over
   * a `readonly=on`).
   */
  async makeWritableMounted(datasetId: string): Promise<void> {
    const real = argv.set(this.pool, datasetId, 'readonly', 'off');
    const mirror = argv.set(this.pool, datasetId, READONLY_PROPERTY, 'off');
    const mount = argv.mountWritable(this.pool, datasetId);
    await this.notFoundAsDataset(datasetId, async () => {
      const [r, m, mounted] = await Promise.allSettled([
        this.zfs(real),
        this.zfs(mirror),
        this.zfs(mount).catch((err: unknown) => {
          if (!isDroverError(err, 'DROVER_ZFS_ALREADY_MOUNTED')) throw err;
          return '';
        }),
      ]);
      if (r.status === 'rejected' && m.status === 'fulfilled') {
        await this.zfs(argv.set(this.pool, datasetId, READONLY_PROPERTY, 'on')).catch((err: unknown) => this.log.warn({ err, datasetId }, 'readonly mirror not put back'));
      }
      for (const result of [r, m, mounted]) if (result.status === 'rejected') throw result.reason;
    });
  }

  /** Sets the mountpoint drover uses for this dataset (after a full receive, which inherits the parent's). */
  async applyMountpoint(datasetId: string): Promise<void> {
    const mountpoint = this.mountpointOf(datasetId);
    if (mountpoint !== null) await this.zfs(argv.set(this.pool, datasetId, 'mountpoint', mountpoint));
  }

  async mount(datasetId: string): Promise<void> {
    const args = argv.mount(this.pool, datasetId);
    await this.notFoundAsDataset(datasetId, async () => {
      try {
        await this.zfs(args);
      } catch (err) {
        if (!isDroverError(err, 'DROVER_ZFS_ALREADY_MOUNTED')) throw err;
      }
    });
  }

  async unmount(datasetId: string): Promise<void> {
    const args = argv.unmount(this.pool, datasetId, false);
    await this.notFoundAsDataset(datasetId, async () => {
      try {
        await this.zfsRetryingBusy(args);
      } catch (err) {
        if (isDroverError(err, 'DROVER_ZFS_NOT_MOUNTED')) return;
        if (!isDroverError(err, 'DROVER_ZFS_BUSY')) throw err;
        // Still busy after backoff: force it; this is drover's own dataset (§6.15 of the reference).
        this.log.warn({ datasetId }, 'unmount busy, forcing');
        await this.zfs(argv.unmount(this.pool, datasetId, true));
      }
    });
  }

  async listSnapshots(datasetId: string): Promise<ZfsSnapshotInfo[]> {
    const args = argv.getSnapshots(this.pool, datasetId);
    return this.notFoundAsDataset(datasetId, async () => parseSnapshots(this.pool, datasetId, await this.zfs(args)));
  }

  /**
   * `zfs snapshot` alone (an existing one of that name is fine): no listing after it. The
   * replication loop's interval snapshot, which every replica's step then lists anyway.
   */
  async takeSnapshot(datasetId: string, snapshot: string): Promise<void> {
    const args = argv.snapshot(this.pool, datasetId, snapshot);
    try {
      await this.zfs(args);
      this.log.debug({ datasetId, snapshot }, 'snapshot taken');
    } catch (err) {
      if (isDroverError(err, 'DROVER_ZFS_EXISTS')) return;
      if (isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) await this.mustGet(datasetId);
      throw err;
    }
  }

  async createSnapshot(datasetId: string, snapshot: string): Promise<ZfsSnapshotInfo> {
    return (await this.createSnapshotListed(datasetId, snapshot)).snapshot;
  }

  /**
   * createSnapshot, with the dataset's snapshots as listed right after it (the listing that
   * finds the new one's guid): a replication step plans with it instead of listing again.
   */
  async createSnapshotListed(datasetId: string, snapshot: string): Promise<{ snapshot: ZfsSnapshotInfo; snapshots: ZfsSnapshotInfo[] }> {
    const args = argv.snapshot(this.pool, datasetId, snapshot);
    try {
      await this.zfs(args);
      this.log.debug({ datasetId, snapshot }, 'snapshot taken');
    } catch (err) {
      if (!isDroverError(err, 'DROVER_ZFS_EXISTS')) {
        if (isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) await this.mustGet(datasetId);
        throw err;
      }
    }
    const snapshots = await this.listSnapshots(datasetId);
    const found = snapshots.find((s) => s.snapshot === snapshot);
    if (!found) throw new DroverError('DROVER_ZFS_BAD_OUTPUT', `snapshot ${snapshot} of ${datasetId} not listed after it was taken`);
    return { snapshot: found, snapshots };
  }

  /**
   * Destroys one snapshot; gone already is fine. One `zfs destroy` when it is not held (a
   * replication step's pruning destroys a snapshot a interval, on both sides): zfs itself
   * refuses a held one ("dataset is busy"), and only then is the snapshot listed, to fail at
   * once with DROVER_ZFS_BUSY (retryable) when it is held instead of retrying a hold away.
   */
  async destroySnapshot(datasetId: string, snapshot: string): Promise<void> {
    const args = argv.destroySnapshot(this.pool, datasetId, snapshot);
    try {
      try {
        await this.zfs(args);
        return;
      } catch (err) {
        if (!isDroverError(err, 'DROVER_ZFS_BUSY')) throw err;
      }
      const held = (await this.listSnapshots(datasetId)).find((s) => s.snapshot === snapshot);
      if (held === undefined) return;
      if (held.userrefs > 0) {
        throw new DroverError('DROVER_ZFS_BUSY', `cannot destroy ${held.name}: it is held (${held.userrefs})`, {
          retryable: true,
          detail: { datasetId, snapshot, userrefs: held.userrefs },
        });
      }
      await this.zfsRetryingBusy(args);
    } catch (err) {
      if (!isDroverError(err, 'DROVER_ZFS_NOT_FOUND') && !isDroverError(err, 'DROVER_DATASET_NOT_FOUND')) throw err;
    }
  }

  /**
   * Releases `tag` from each of `snapshots` in one `zfs release` (each release waits for a
   * transaction group: one command, one wait). A snapshot without the tag, or gone, is fine,
   * as in `release`; zfs releases the others and reports those one line each.
   */
  async releaseMany(datasetId: string, snapshots: readonly string[], tag: string): Promise<void> {
    if (snapshots.length === 0) return;
    for (const s of snapshots) assertSnapshotName(s);
    try {
      await this.zfs(argv.releaseMany(this.pool, datasetId, snapshots, tag));
    } catch (err) {
      if (isDroverError(err, 'DROVER_ZFS_NO_SUCH_TAG') || isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) {
        // Several lines: tolerated only when every one says "no such tag" or "does not exist".
        const stderr = String((err as DroverError).detail?.stderr ?? '');
        const lines = stderr.split('\n').filter((l) => l.trim() !== '');
        if (lines.every((l) => /no such tag|does not exist/i.test(l))) return;
      }
      throw err;
    }
  }

  async hold(datasetId: string, snapshot: string, tag: string): Promise<void> {
    const args = argv.hold(this.pool, datasetId, snapshot, tag);
    try {
      await this.zfs(args);
    } catch (err) {
      if (!isDroverError(err, 'DROVER_ZFS_HOLD_EXISTS')) throw err;
    }
  }

  async release(datasetId: string, snapshot: string, tag: string): Promise<void> {
    const args = argv.release(this.pool, datasetId, snapshot, tag);
    try {
      await this.zfs(args);
    } catch (err) {
      if (!isDroverError(err, 'DROVER_ZFS_NO_SUCH_TAG') && !isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) throw err;
    }
  }

  /**
   * Rolls the dataset's filesystem back to `snapshot`, which must be its newest: destroys no
   * snapshot (a newer one makes zfs refuse, DROVER_ZFS_* from the adapter's classification).
   */
  async rollbackToNewest(datasetId: string, snapshot: string): Promise<void> {
    await this.zfsRetryingBusy(argv.rollbackToNewest(this.pool, datasetId, snapshot));
    this.log.info({ datasetId, snapshot }, 'dataset rolled back to its newest snapshot');
  }

  async rollback(datasetId: string, snapshot: string): Promise<void> {
    await this.zfsRetryingBusy(argv.rollback(this.pool, datasetId, snapshot));
    this.log.info({ datasetId, snapshot }, 'dataset rolled back');
  }

  /** This host's zfs features, probed once (zfs-features.ts). */
  features(): Promise<ZfsFeatures> {
    if (this.featuresProbe === null) {
      this.featuresProbe = detectFeatures(this.pool, (args) => this.runner.run(this.zfsPath, args, { timeoutMs: 30_000 }));
      this.featuresProbe.catch(() => (this.featuresProbe = null));
    }
    return this.featuresProbe;
  }

  /** Starts `zfs send` of one of this pool's drover snapshots. */
  send(request: Omit<SendRequest, 'pool'>): ZfsStreamProcess {
    return spawnSend(this.runner, this.zfsPath, { ...request, pool: this.pool });
  }

  /**
   * Starts `zfs receive -u` into `<pool>/drover/<id>` (`-s` only when resumable); from
   * `from`, a descriptor of this process, when given (drover-receive: the ssh channel).
   */
  receive(datasetId: string, resumable: boolean, from?: number): ZfsStreamProcess {
    return spawnReceive(this.runner, this.zfsPath, this.pool, datasetId, resumable, from);
  }

  /**
   * Bytes written to the dataset since its newest snapshot (`written`), or null when this
   * zfs has no such property (zfs-fuse 0.7: feature-detected on first use, then remembered).
   */
  async written(datasetId: string): Promise<number | null> {
    if (this.writtenSupported === false) return null;
    try {
      const value = Number((await this.zfs(argv.getProperty(this.pool, datasetId, 'written'))).trim());
      this.writtenSupported = true;
      return Number.isFinite(value) ? value : null;
    } catch (err) {
      if (!isDroverError(err, 'DROVER_ZFS_UNSUPPORTED')) throw err;
      this.writtenSupported = false;
      return null;
    }
  }

  /** The per-peer hold tags recorded on the dataset (names.ts HOLD_TAGS_PROPERTY); [] when none or no dataset. */
  async recordedHoldTags(datasetId: string): Promise<string[]> {
    try {
      const value = (await this.zfs(argv.getProperty(this.pool, datasetId, HOLD_TAGS_PROPERTY))).trim();
      return value === '-' || value === '' ? [] : value.split(',').filter((t) => isDroverSnapshotName(t));
    } catch (err) {
      if (isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) return [];
      throw err;
    }
  }

  /** Sets the recorded per-peer hold tags to exactly `tags` (a no-op when they already are). */
  async recordHoldTags(datasetId: string, tags: readonly string[]): Promise<void> {
    const wanted = [...new Set(tags)].sort();
    const current = (await this.recordedHoldTags(datasetId)).sort();
    if (wanted.join(',') === current.join(',')) return;
    await this.notFoundAsDataset(datasetId, () => this.zfs(argv.setHoldTags(this.pool, datasetId, wanted)));
  }

  /** The receive_resume_token of a partial receive, or null (none, or not supported here). */
  async resumeToken(datasetId: string): Promise<string | null> {
    if (!(await this.features()).resumableReceive) return null;
    try {
      const value = (await this.zfs(['get', '-H', '-o', 'value', 'receive_resume_token', datasetPath(this.pool, datasetId)])).trim();
      return value === '' || value === '-' ? null : value;
    } catch (err) {
      if (isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) return null;
      throw err;
    }
  }

  /** Discards a partial resumable receive (`recv -A`); a no-op when there is none or it is unsupported. */
  async abortResume(datasetId: string): Promise<void> {
    if (!(await this.features()).resumableReceive) return;
    try {
      await this.zfs(['receive', '-A', datasetPath(this.pool, datasetId)]);
    } catch (err) {
      if (!/does not have any resumable receive state|does not exist/i.test(String((err as DroverError).detail?.stderr ?? ''))) throw err;
    }
  }

  /**
   * After a full receive: read-only (zfs-fuse has no `recv -o`), drover's mountpoint, and
   * unmounted again (setting a mountpoint mounts the dataset).
   */
  async settleReplica(datasetId: string): Promise<void> {
    await this.setReadonly(datasetId, true);
    const info = await this.getDataset(datasetId);
    const wanted = this.mountpointOf(datasetId);
    if (info && wanted !== null && info.mountpoint !== wanted) {
      await this.applyMountpoint(datasetId);
      await this.unmount(datasetId);
    }
  }

  private mountpointOf(datasetId: string): string | null {
    assertDatasetId(datasetId);
    return this.mountRoot === null ? null : `${this.mountRoot.replace(/\/+$/, '')}/${datasetId}`;
  }

  /** Maps "does not exist" on a dataset operation to DROVER_DATASET_NOT_FOUND. */
  private async notFoundAsDataset<T>(datasetId: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!isDroverError(err, 'DROVER_ZFS_NOT_FOUND')) throw err;
      const why = await this.poolMissingOr(err);
      if (why !== err) throw why;
      throw new DroverError('DROVER_DATASET_NOT_FOUND', `dataset ${datasetPath(this.pool, datasetId)} does not exist`, {
        detail: { datasetId, pool: this.pool },
        cause: err,
      });
    }
  }
}

// Re-exported so callers validate with the same functions the adapter uses.
export { assertDatasetId, assertSnapshotName, assertHoldTag };

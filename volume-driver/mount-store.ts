/**
 * Keeps the mount multiset (mounts.ts) on disk so that counts survive a restart of the
 * plugin: Docker never activates a plugin twice and never replays Mounts, so the counts
 * are the only record of which containers still use a volume.
 *
 * Writes are atomic (temporary file, then rename): after the plugin crashes the file holds
 * either the old or the new state, never half of one. They are not fsync'd, on purpose: the
 * counts must survive the plugin, whose writes the page cache keeps, not the host — after a
 * reboot every container is gone and the counts are void anyway (`bootId`). An fsync cost
 * 30–100 ms per Mount and Unmount on a busy disk, for nothing. Concurrent updates are
 * coalesced; `update` resolves once a write that includes its change is done.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import { afterReboot, emptyMountState, MountState } from './mounts.ts';

export const MOUNTS_FILE = 'mounts.json';

export class MountStore {
  private state: MountState;
  private readonly file: string;
  private writing: Promise<void> | null = null;
  private dirty = false;
  private waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];

  private constructor(dir: string, state: MountState) {
    this.file = join(dir, MOUNTS_FILE);
    this.state = state;
  }

  /**
   * Opens (creating the directory if needed) and reads the state. A missing file is an empty
   * state; an unreadable one is DROVER_STATE_CORRUPT, never silently reset (the counts are
   * what keeps a lease from being dropped under a running container). Given the host's
   * `bootId`, a state written before a reboot keeps no mounts: their leases become pending
   * releases.
   */
  static async open(dir: string, options: { bootId?: string; log?: Logger } = {}): Promise<MountStore> {
    const store = await MountStore.read(dir);
    const { bootId } = options;
    if (bootId === undefined || store.state.boot_id === bootId) return store;
    // A state from before a reboot (or the first start): no mount survived it.
    if (Object.keys(store.state.volumes).length > 0) {
      options.log?.warn({ volumes: Object.keys(store.state.volumes) }, 'host rebooted since the mounts were counted; their leases will be released');
    }
    await store.update((s) => ({ ...afterReboot(s), boot_id: bootId }));
    return store;
  }

  private static async read(dir: string): Promise<MountStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, MOUNTS_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new MountStore(dir, emptyMountState());
      throw new DroverError('DROVER_STATE_UNREADABLE', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      return new MountStore(dir, MountState.parse(JSON.parse(text)));
    } catch (err) {
      throw new DroverError('DROVER_STATE_CORRUPT', `${file} is not a valid mount state (${(err as Error).message.slice(0, 200)}); move it aside to start with no mounts`, {
        cause: err,
        detail: { file },
      });
    }
  }

  get current(): MountState {
    return this.state;
  }

  /** Applies `change` now (synchronously) and resolves once the result is on disk. */
  update(change: (state: MountState) => MountState): Promise<void> {
    this.state = change(this.state);
    this.dirty = true;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.writing) this.writing = this.flush();
    return done;
  }

  private async flush(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      const waiters = this.waiters;
      this.waiters = [];
      try {
        await this.write(JSON.stringify(this.state, null, 2) + '\n');
        for (const w of waiters) w.resolve();
      } catch (err) {
        const failure = new DroverError('DROVER_STATE_WRITE_FAILED', `cannot write ${this.file}: ${(err as Error).message}`, { cause: err, retryable: true });
        for (const w of waiters) w.reject(failure);
      }
    }
    this.writing = null;
  }

  private async write(text: string): Promise<void> {
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, this.file);
  }
}

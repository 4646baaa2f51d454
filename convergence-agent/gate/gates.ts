/**
 * The host side of container gates (gate/README.md): one directory per gate under
 * `<state_dir>/gates/<gate id>` holding the FIFO the gated process waits on and, once
 * opened, the `open` marker. The gate id is the migration's id (a uuid), checked before it
 * becomes a path.
 *
 * `detect()` decides once, at start-up, whether this node can warm-start at all: a static
 * busybox on the host. Without one the agent starts containers after handoff, as before.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { CommandRunner } from '../zfs/command.ts';
import { isStaticElf } from './elf.ts';
import { GATE_FIFO, GATE_MARKER } from './gate-script.ts';
import { mountOf, parseMountinfo, propagates } from './mountinfo.ts';

export type GateState = { state: 'closed' } | { state: 'open'; openedAt: number } | { state: 'missing' };

/** What the container runtime needs to create a gated container. */
export interface GateMount {
  id: string;
  /** Host directory bind-mounted read-only at GATE_DIR_IN_CONTAINER. */
  hostDir: string;
  /** Host path of the static busybox. */
  shell: string;
}

const GATE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function checkId(id: string): string {
  if (!GATE_ID.test(id)) throw new DroverError('DROVER_INVALID_NAME', `gate id ${JSON.stringify(id)} is not a uuid`);
  return id;
}

export interface GatesOptions {
  root: string;
  shell: string;
  runner: CommandRunner;
  log: Logger;
  mountinfoPath?: string;
}

export class Gates {
  constructor(private readonly options: GatesOptions) {}

  /** A static busybox at `shell`, or why this node cannot gate containers. */
  static async detect(shell: string): Promise<{ ok: true } | { ok: false; reason: string }> {
    let head: Buffer;
    try {
      const file = await open(shell, 'r');
      try {
        head = Buffer.alloc(4096);
        await file.read(head, 0, head.length, 0);
      } finally {
        await file.close();
      }
    } catch (err) {
      return { ok: false, reason: `${shell}: ${(err as Error).message}` };
    }
    return isStaticElf(head) ? { ok: true } : { ok: false, reason: `${shell} is not a statically linked executable` };
  }

  dir(id: string): string {
    return join(this.options.root, checkId(id));
  }

  /** Creates the gate closed (idempotent: an existing FIFO is kept, a stale marker removed). */
  async prepare(id: string): Promise<GateMount> {
    const dir = this.dir(id);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await rm(join(dir, GATE_MARKER), { force: true });
    const fifo = join(dir, GATE_FIFO);
    const existing = await stat(fifo).catch(() => null);
    if (existing !== null && !existing.isFIFO()) await rm(fifo, { force: true });
    if (existing === null || !existing.isFIFO()) {
      const r = await this.options.runner.run('mkfifo', ['-m', '0600', fifo], { timeoutMs: 10_000 });
      if (r.exitCode !== 0) throw new DroverError('DROVER_COMMAND_FAILED', `mkfifo ${fifo}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    }
    return { id, hostDir: dir, shell: this.options.shell };
  }

  /**
   * Opens the gate: the marker first (a process that arrives later goes straight through),
   * then a wake-up on the FIFO for the one waiting now (nobody waiting: ENXIO, nothing to wake).
   */
  async open(id: string): Promise<void> {
    const dir = this.dir(id);
    const marker = await open(join(dir, GATE_MARKER), 'w');
    await marker.close();
    let fd: number | null = null;
    try {
      fd = openSync(join(dir, GATE_FIFO), constants.O_WRONLY | constants.O_NONBLOCK);
      writeSync(fd, 'open\n');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENXIO' && code !== 'EAGAIN') throw err;
    } finally {
      if (fd !== null) closeSync(fd);
    }
    this.options.log.info({ gate: id }, 'gate opened');
  }

  async state(id: string): Promise<GateState> {
    const dir = this.dir(id);
    const marker = await stat(join(dir, GATE_MARKER)).catch(() => null);
    if (marker !== null) return { state: 'open', openedAt: marker.mtimeMs };
    const fifo = await stat(join(dir, GATE_FIFO)).catch(() => null);
    return fifo?.isFIFO() ? { state: 'closed' } : { state: 'missing' };
  }

  async remove(id: string): Promise<void> {
    await rm(this.dir(id), { recursive: true, force: true });
  }

  /**
   * Removes gate directories no container refers to any more (a gated container removed
   * outside drover), once older than `graceMs` — a directory is made just before its
   * container. `inUse`: the gate ids of the containers discovery listed (never call it on an
   * unknown listing). Returns the ids removed.
   */
  async sweep(inUse: ReadonlySet<string>, now: number, graceMs = 600_000): Promise<string[]> {
    const names = await readdir(this.options.root).catch(() => [] as string[]);
    const removed: string[] = [];
    for (const name of names) {
      if (!GATE_ID.test(name) || inUse.has(name)) continue;
      const info = await stat(join(this.options.root, name)).catch(() => null);
      if (info === null || !info.isDirectory() || now - info.mtimeMs < graceMs) continue;
      await this.remove(name);
      removed.push(name);
    }
    if (removed.length > 0) this.options.log.info({ gates: removed }, 'unused gate directories removed');
    return removed;
  }

  /**
   * Readies a dataset's mountpoint for a gated container's bind before the dataset is
   * mounted: the (empty) directory exists, and the mount holding it propagates.
   */
  async prepareBindSource(path: string): Promise<void> {
    await mkdir(path, { recursive: true });
    await this.ensurePropagation(path);
  }

  /**
   * Makes sure a mount made at `path` later reaches a container that binds `path` with
   * rslave propagation: the mount holding `path` must be shared (or a slave). A private one
   * is made shared — it is the parent of drover's own datasets (`<pool>/drover`, or the
   * mount root), and most hosts (systemd's) have every mount shared already.
   */
  async ensurePropagation(path: string): Promise<void> {
    const entries = parseMountinfo(await readFile(this.options.mountinfoPath ?? '/proc/self/mountinfo', 'utf8'));
    const mount = mountOf(entries, path);
    if (mount === null) throw new DroverError('DROVER_COMMAND_FAILED', `no mount holds ${path}`);
    if (propagates(mount)) return;
    const r = await this.options.runner.run('mount', ['--make-shared', mount.mountPoint], { timeoutMs: 10_000 });
    if (r.exitCode !== 0) {
      throw new DroverError('DROVER_COMMAND_FAILED', `mount --make-shared ${mount.mountPoint}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    }
    this.options.log.info({ mountPoint: mount.mountPoint }, 'mount made shared for gated containers');
  }
}

/**
 * The last desired view the agent received, kept in `<state_dir>/desired.json` (docs/DESIGN.md
 * §29), so an agent that starts while no control service answers keeps its node as it was —
 * containers running, data where it is — instead of waiting with nothing to go by, and
 * converges when a control service answers again.
 *
 * Writes are atomic (a temp file in the same directory, fsync, rename, fsync of the
 * directory) and 0600: the view names the node's applications and their environment. A save
 * never blocks the loop: saves are chained, and one that finds a newer view queued skips
 * to it. A file that cannot be read or does not validate is reported and ignored — unknown
 * is not empty, so the agent then waits for a control service as it did before.
 */
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { AgentDesired } from '#common/channel.ts';
import type { Logger } from '#common/log.ts';

const CacheFile = z
  .object({
    format_version: z.literal(1),
    node_uuid: z.string(),
    /** When it was received (agent clock, ms): how stale a restored view is. */
    saved_at: z.number(),
    desired: AgentDesired,
  })
  .strict();

export interface RestoredDesired {
  desired: AgentDesired;
  savedAt: number;
}

export class DesiredCache {
  private chain: Promise<void> = Promise.resolve();
  private pending: { desired: AgentDesired; at: number } | null = null;
  private savedVersion: number | null = null;

  constructor(
    readonly path: string,
    private readonly nodeUuid: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The saved view, or null when there is none, it is damaged, or it belongs to another node
   * (each said in the log).
   */
  async load(): Promise<RestoredDesired | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err, file: this.path }, 'saved desired view not read');
      return null;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      this.log.warn({ err, file: this.path }, 'saved desired view is not JSON: ignored');
      return null;
    }
    const parsed = CacheFile.safeParse(raw);
    if (!parsed.success) {
      this.log.warn({ file: this.path, issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`) }, 'saved desired view does not validate: ignored');
      return null;
    }
    if (parsed.data.node_uuid !== this.nodeUuid) {
      this.log.warn({ file: this.path, savedFor: parsed.data.node_uuid }, 'saved desired view is of another node: ignored');
      return null;
    }
    this.savedVersion = parsed.data.desired.version;
    return { desired: parsed.data.desired, savedAt: parsed.data.saved_at };
  }

  /** Queues `desired` to be saved; returns at once. A view of the version saved last is skipped. */
  save(desired: AgentDesired): void {
    if (desired.version === this.savedVersion && this.pending === null) return;
    const queued = this.pending !== null;
    this.pending = { desired, at: this.now() };
    if (queued) return;
    this.chain = this.chain.then(() => this.flush());
  }

  /** Resolves once every queued save is written (or has failed, logged). */
  async settled(): Promise<void> {
    await this.chain;
  }

  private async flush(): Promise<void> {
    const next = this.pending;
    this.pending = null;
    if (next === null || next.desired.version === this.savedVersion) return;
    const text = JSON.stringify({ format_version: 1, node_uuid: this.nodeUuid, saved_at: next.at, desired: next.desired });
    const temp = `${this.path}.tmp-${process.pid}`;
    try {
      await writeAtomic(this.path, temp, text);
      this.savedVersion = next.desired.version;
    } catch (err) {
      this.log.warn({ err, file: this.path }, 'desired view not saved');
      await unlink(temp).catch(() => undefined);
    }
  }
}

async function writeAtomic(path: string, temp: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(temp, text, { mode: 0o600 });
  const file = await open(temp, 'r+');
  try {
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * The proxy's saved route table (docs/DESIGN.md §31): the last table it applied, kept in
 * `<state_dir>/routes.json` (`{format_version, node_uuid, saved_at, table}`, mode 0600: temp file
 * in the same directory, fsync, rename, fsync of the directory), so a proxy restarted while no
 * control service answers serves its applications as before instead of nothing.
 *
 * A restored table is only a start: the proxy neither acknowledges its version (versions of two
 * stores are not comparable, and a cutover waits for acknowledgements) nor long-polls after it —
 * its first poll asks with no version, so the control service's first answer replaces it.
 * A damaged file, one that does not validate or names another node is logged and ignored.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { RouteTable } from '#common/channel.ts';
import type { Logger } from '#common/log.ts';

const Saved = z.object({ format_version: z.literal(1), node_uuid: z.string(), saved_at: z.number(), table: RouteTable }).strict();

export function routeCachePath(stateDir: string): string {
  return join(stateDir, 'routes.json');
}

/** Writes the table atomically, 0600. Saves are chained: a burst ends with the newest on disk. */
export class RouteCache {
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly nodeUuid: string,
    private readonly log: Logger,
  ) {}

  save(table: RouteTable): Promise<void> {
    const next = this.last.then(() => this.write(table)).catch((err: unknown) => this.log.warn({ err, path: this.path }, 'route table not saved'));
    this.last = next;
    return next;
  }

  /** The saved table for this node, or null (none, damaged, another node's: logged). */
  async load(): Promise<RouteTable | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err, path: this.path }, 'saved route table unreadable, ignored');
      return null;
    }
    try {
      const saved = Saved.parse(JSON.parse(text));
      if (saved.node_uuid !== this.nodeUuid) {
        this.log.warn({ path: this.path, node: saved.node_uuid }, 'saved route table is another node\'s, ignored');
        return null;
      }
      return saved.table;
    } catch (err) {
      this.log.warn({ err, path: this.path }, 'saved route table damaged, ignored');
      return null;
    }
  }

  private async write(table: RouteTable): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(JSON.stringify({ format_version: 1, node_uuid: this.nodeUuid, saved_at: Date.now(), table }));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, this.path);
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}

/**
 * The sweep of stored file contents (docs/DESIGN.md §22): a content that no application in the
 * desired configuration names — its project removed, its config edited — is removed once every
 * sweep for the grace period (default 24 h) has found it unnamed, and it has not been stored
 * since. The grace covers a content stored for a deploy that has not committed yet, a secret
 * stored through the API for an application not deployed yet, and an operator who removes a
 * project and deploys it again the next morning. When a content was first found unnamed is kept
 * in memory: a restarted control service starts every grace again (the safe direction).
 */
import type { Logger } from '#common/log.ts';
import type { Desired } from '#common/model.ts';
import type { FileKind, StoredContent, Vault } from './vault.ts';

export const DEFAULT_CONTENT_GRACE_MS = 24 * 3600_000;
export const DEFAULT_SWEEP_INTERVAL_MS = 3600_000;

const key = (kind: FileKind, id: string) => `${kind}/${id}`;

/** Every content the configuration names, as `kind/id`. Pure. */
export function namedContents(desired: Desired): Set<string> {
  const out = new Set<string>();
  for (const app of desired.applications) {
    for (const f of app.files ?? []) {
      const kind: FileKind = f.kind === 'secret' ? 'secret' : 'file';
      if (f.blob !== undefined) out.add(key(kind, f.blob));
      for (const id of Object.values(f.tree ?? {})) out.add(key(kind, id));
    }
    for (const id of Object.values(app.secret_environment ?? {})) out.add(key('secret', id));
  }
  return out;
}

/**
 * The stored contents a sweep at `now` removes: unnamed now and since at least the grace
 * (`unnamedSince`, updated here: named ones leave it, newly unnamed ones enter it at `now`), and
 * last stored before the grace.
 */
export function sweepable(stored: readonly StoredContent[], named: ReadonlySet<string>, unnamedSince: Map<string, number>, now: number, graceMs: number): StoredContent[] {
  const present = new Set(stored.map((c) => key(c.kind, c.id)));
  for (const k of [...unnamedSince.keys()]) if (named.has(k) || !present.has(k)) unnamedSince.delete(k);
  const out: StoredContent[] = [];
  for (const c of stored) {
    const k = key(c.kind, c.id);
    if (named.has(k)) continue;
    const since = unnamedSince.get(k) ?? now;
    unnamedSince.set(k, since);
    if (since <= now - graceMs && c.storedAt < now - graceMs) out.push(c);
  }
  return out;
}

export interface SweepResult {
  removed: number;
  kept: number;
}

export class ContentSweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<SweepResult> | null = null;
  /** `kind/id` → when a sweep first found it unnamed. */
  private readonly unnamedSince = new Map<string, number>();

  constructor(
    private readonly options: {
      vault: Vault;
      desired: () => Desired;
      log: Logger;
      graceMs?: number;
      intervalMs?: number;
      now?: () => number;
    },
  ) {}

  /** Sweeps now, then every interval. */
  start(): void {
    const every = this.options.intervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    void this.sweep().catch((err: unknown) => this.options.log.warn({ err }, 'file contents sweep failed'));
    this.timer = setInterval(() => void this.sweep().catch((err: unknown) => this.options.log.warn({ err }, 'file contents sweep failed')), every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One sweep (one at a time: a call during another waits for it and answers its result). */
  sweep(): Promise<SweepResult> {
    this.running ??= this.once().finally(() => (this.running = null));
    return this.running;
  }

  private async once(): Promise<SweepResult> {
    const { vault, log } = this.options;
    const now = (this.options.now ?? Date.now)();
    const graceMs = this.options.graceMs ?? DEFAULT_CONTENT_GRACE_MS;
    const stored = await vault.list();
    // The configuration is read after the listing: a content stored and named by a deploy in
    // between is named here; one stored but not yet named is younger than the grace.
    const named = namedContents(this.options.desired());
    let removed = 0;
    for (const c of sweepable(stored, named, this.unnamedSince, now, graceMs)) {
      // Checked again in the vault's turn: a deploy may have stored it again since the listing.
      if (await vault.removeIfStoredBefore(c.kind, c.id, now - graceMs)) {
        removed++;
        this.unnamedSince.delete(key(c.kind, c.id));
        log.info({ kind: c.kind, id: `${c.id.slice(0, 12)}…`, storedS: Math.round((now - c.storedAt) / 1000) }, 'unnamed file content removed');
      }
    }
    return { removed, kept: stored.length - removed };
  }
}

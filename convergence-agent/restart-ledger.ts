/**
 * The agent's memory of the restarts it made, per container id (Docker's RestartCount only
 * counts its own policy's restarts, and drover never sets one). With a file, it survives an
 * agent restart, so an on-failure retry budget is not reset by restarting the agent.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';

export interface RestartRecord {
  restarts: number;
  consecutive: number;
}

const LedgerFile = z.record(z.string(), z.object({ restarts: z.number().int().min(0), consecutive: z.number().int().min(0) }));

export class RestartLedger {
  private readonly records = new Map<string, RestartRecord>();

  /** `file`: where the ledger is kept (the agent's state dir); in memory only when absent. */
  constructor(private readonly file: string | null = null) {
    if (file === null) return;
    try {
      const parsed = LedgerFile.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      // A damaged ledger only loses counts: start from zero rather than refuse to start.
      if (parsed.success) for (const [id, record] of Object.entries(parsed.data)) this.records.set(id, record);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
    }
  }

  get(containerId: string): RestartRecord {
    return this.records.get(containerId) ?? { restarts: 0, consecutive: 0 };
  }

  recordRestart(containerId: string, consecutive: number): void {
    const record = this.get(containerId);
    this.records.set(containerId, { restarts: record.restarts + 1, consecutive });
    this.save();
  }

  /** Forgets containers that no longer exist. */
  retain(containerIds: Iterable<string>): void {
    const keep = new Set(containerIds);
    let changed = false;
    for (const id of this.records.keys()) {
      if (!keep.has(id)) {
        this.records.delete(id);
        changed = true;
      }
    }
    if (changed) this.save();
  }

  private save(): void {
    if (this.file === null) return;
    // Small and rare (one write per restart): synchronous temp + rename keeps it whole.
    mkdirSync(dirname(this.file), { recursive: true });
    const temp = `${this.file}.tmp`;
    writeFileSync(temp, JSON.stringify(Object.fromEntries(this.records)));
    renameSync(temp, this.file);
  }
}

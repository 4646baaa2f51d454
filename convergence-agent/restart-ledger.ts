/**
 * The agent's memory of the restarts it made, per container id (Docker's RestartCount only
 * counts its own policy's restarts, and drover never sets one).
 *
 * XXX: kept in memory only: an agent restart forgets the counts (and so resets an
 * on-failure retry budget). Persisting it in the state directory is easy when it matters.
 */
export interface RestartRecord {
  restarts: number;
  consecutive: number;
}

export class RestartLedger {
  private readonly records = new Map<string, RestartRecord>();

  get(containerId: string): RestartRecord {
    return this.records.get(containerId) ?? { restarts: 0, consecutive: 0 };
  }

  recordRestart(containerId: string, consecutive: number): void {
    const record = this.get(containerId);
    this.records.set(containerId, { restarts: record.restarts + 1, consecutive });
  }

  /** Forgets containers that no longer exist. */
  retain(containerIds: Iterable<string>): void {
    const keep = new Set(containerIds);
    for (const id of this.records.keys()) if (!keep.has(id)) this.records.delete(id);
  }
}

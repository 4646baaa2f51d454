/**
 * A store that keeps the document in memory only: for unit tests, where durability is not
 * the behaviour. It passes the same contract suite as the file store (testing/store.contract.ts).
 */
import type { Logger } from '#common/log.ts';
import { silentLogger } from '#common/log.ts';
import type { Desired } from '#common/model.ts';
import { CommittingStore } from './committing-store.ts';
import type { StoreSnapshot } from './config-store.ts';

export class MemoryConfigStore extends CommittingStore {
  /** What `persist` saw last: the contract tests read it back. */
  saved: { version: number; desired: Desired } | null = null;

  constructor(
    private readonly initial: { version: number; desired: unknown } = { version: 0, desired: undefined },
    log: Logger = silentLogger(),
  ) {
    super(log);
  }

  protected async read(): Promise<{ version: number; desired: unknown }> {
    return this.initial;
  }

  protected async persist(next: StoreSnapshot): Promise<void> {
    this.saved = { version: next.version, desired: next.desired };
  }
}

/**
 * A whole node in memory for "converges within N passes" tests: the zfs fake, the container
 * fake, the real executor and the real planner, and a fake clock. `pass()` observes, plans
 * and executes once, as the loop does.
 */
import type { AgentDesired } from '#common/channel.ts';
import { silentLogger } from '#common/log.ts';
import { discoverRaw, toObserved } from '../discover.ts';
import { Executor, type ExecutionResult } from '../execute.ts';
import { plan } from '../plan/plan.ts';
import type { Health, LocalObserved, PlanResult } from '../plan/types.ts';
import { RestartLedger } from '../restart-ledger.ts';
import { FakeDatasetStore } from './fake-dataset-store.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { FakeContainerRuntime } from './fake-container-runtime.ts';
import { ADDRESS_A, NODE_A } from './fixtures.ts';

export class FakeWorld {
  readonly clock = new FakeClock();
  readonly store = new FakeDatasetStore({ pool: 'fakepool', mountRoot: '/mnt/drover' });
  readonly runtime = new FakeContainerRuntime(() => this.clock.now());
  readonly ledger = new RestartLedger();
  readonly executor = new Executor({ store: this.store, runtime: this.runtime, ledger: this.ledger, clock: this.clock, log: silentLogger() });
  /** Health as the monitor would say it, by container name. */
  readonly health = new Map<string, Health>();

  constructor(readonly nodeUuid = NODE_A, readonly address = ADDRESS_A) {}

  async observe(): Promise<LocalObserved> {
    const raw = await discoverRaw({ store: this.store, runtime: this.runtime, nodeUuid: this.nodeUuid, log: silentLogger() });
    const names = new Map(raw.containers?.map((c) => [c.id, c.name]));
    return toObserved(raw, (id) => this.health.get(names.get(id) ?? '') ?? 'unknown', this.ledger);
  }

  async pass(desired: AgentDesired): Promise<PlanResult & { execution: ExecutionResult }> {
    const observed = await this.observe();
    const result = plan(desired, observed, { nodeUuid: this.nodeUuid, address: this.address, now: this.clock.now() });
    const execution = await this.executor.execute(result.changes);
    return { ...result, execution };
  }

  /**
   * Passes until one plans no change and waits for nothing (no backoff pending); returns the
   * number of passes before that one. Throws after `max` passes (a planner that never converges).
   */
  async converge(desired: AgentDesired, max = 5): Promise<number> {
    for (let i = 0; i <= max; i++) {
      const result = await this.pass(desired);
      if (result.changes.length === 0 && result.recheckAfterMs === null && result.execution.retryInMs === null) return i;
      // Between passes the loop sleeps; let backoffs expire as they would.
      await this.clock.advance(Math.max(100, result.execution.retryInMs ?? 0, result.recheckAfterMs ?? 0));
    }
    throw new Error(`not converged within ${max} passes`);
  }
}

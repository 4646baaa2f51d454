/**
 * An in-memory MigrationControl for the migration job's tests: one record per migration,
 * judged by the protocol the control service uses (common/migration-protocol.ts), refusals
 * answered as the HTTP client reports them (the server's code and detail, `detail.status`
 * 409, or 404 for an unknown migration), and a switch that makes it unreachable.
 * `migration-control.contract.ts` holds it to the real control service's answers.
 */
import type { MigrationUpdate } from '#common/channel.ts';
import { DroverError, type ErrorCode } from '#common/errors.ts';
import { judgeControlFailure, judgeUpdate, type ControlFailure } from '#common/migration-protocol.ts';
import type { Migration, MigrationPhase } from '#common/model.ts';
import type { MigrationControl } from '../migration/migration-control.ts';

export class FakeMigrationControl implements MigrationControl {
  readonly records = new Map<string, Migration>();
  /** Every accepted phase change, in order: `<phase>`. */
  readonly phases: string[] = [];
  /** Every update that reached the control service (accepted or not). */
  readonly updates: MigrationUpdate[] = [];
  unreachable = false;
  /** When set, the next update of this phase is committed but its answer is lost. */
  loseAnswerOf: MigrationPhase | null = null;
  acked = true;

  /** `now` stamps `updated_at` and the cutover's times, as the control service's clock does. */
  constructor(private readonly now: () => number = () => Date.now()) {}

  add(m: Migration): void {
    this.records.set(m.id, structuredClone(m));
  }

  async update(id: string, u: MigrationUpdate): Promise<Migration> {
    this.reachable();
    const m = this.records.get(id);
    if (!m) throw refused(404, 'DROVER_MIGRATION_NOT_FOUND', 'Migration not found.', { id });
    this.updates.push(u);
    const verdict = judgeUpdate(m, u, this.now());
    if (!verdict.ok) throw refused(409, verdict.error.code, verdict.error.message, verdict.error.detail);
    if (verdict.effect === 'unchanged') return structuredClone(m);
    this.records.set(id, verdict.migration);
    if (verdict.effect === 'advanced') this.phases.push(u.phase);
    if (this.loseAnswerOf === u.phase) {
      this.loseAnswerOf = null;
      throw new DroverError('DROVER_CONTROL_UNREACHABLE', 'answer lost (fake)', { retryable: true });
    }
    return structuredClone(verdict.migration);
  }

  /** The control service's own `failed` (cancel, deadline, roll-back), judged by the protocol; recorded as `failed by control`. */
  failByControl(id: string, kind: ControlFailure, reason: string): void {
    const verdict = judgeControlFailure(this.records.get(id)!, kind, reason, this.now());
    if (!verdict.ok) throw verdict.error;
    this.records.set(id, verdict.migration);
    this.phases.push('failed by control');
  }

  async get(id: string): Promise<Migration> {
    this.reachable();
    const m = this.records.get(id);
    if (!m) throw refused(404, 'DROVER_MIGRATION_NOT_FOUND', 'Migration not found.', { id });
    return structuredClone(m);
  }

  async routeVersion(): Promise<number> {
    this.reachable();
    return 7;
  }

  async routeAcks(): Promise<{ acked: boolean; waiting_for: string[] }> {
    this.reachable();
    return { acked: this.acked, waiting_for: this.acked ? [] : ['33333333-3333-4333-8333-333333333333'] };
  }

  private reachable(): void {
    if (this.unreachable) throw new DroverError('DROVER_CONTROL_UNREACHABLE', 'control service unreachable (fake)', { retryable: true });
  }
}

function refused(status: number, code: ErrorCode, message: string, detail: Record<string, unknown> = {}): DroverError {
  return new DroverError(code, message, { detail: { ...detail, status } });
}

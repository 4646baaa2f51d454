/**
 * An in-memory MigrationControl for the migration job's tests: one record per migration,
 * the control service's rules (generation, phase order, whose turn) answered with the same
 * statuses (409/404 in `detail.status`), and a switch that makes it unreachable.
 */
import type { MigrationUpdate } from '#common/channel.ts';
import { DroverError, type ErrorCode } from '#common/errors.ts';
import type { Migration, MigrationPhase } from '#common/model.ts';
import type { MigrationControl } from '../migration/migration-control.ts';
import { NEXT_PHASES } from '../migration/phases.ts';

const TARGET_POSTS: ReadonlySet<MigrationPhase> = new Set(['release', 'done']);

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

  add(m: Migration): void {
    this.records.set(m.id, structuredClone(m));
  }

  async update(id: string, u: MigrationUpdate): Promise<Migration> {
    this.reachable();
    const m = this.records.get(id);
    if (!m) throw refused(404, 'DROVER_MIGRATION_NOT_FOUND', `no migration ${id}`);
    this.updates.push(u);
    if (u.generation !== m.generation) throw refused(409, 'DROVER_MIGRATION_STALE_GENERATION', 'stale generation');
    const same = u.phase === m.phase;
    if ((m.phase === 'done' || m.phase === 'failed') && same) return structuredClone(m);
    if (!same && !NEXT_PHASES[m.phase].includes(u.phase)) throw refused(409, 'DROVER_MIGRATION_BAD_TRANSITION', `${m.phase} → ${u.phase}`);
    const actor = TARGET_POSTS.has(u.phase) ? m.to : m.from;
    if (u.node_uuid !== actor) throw refused(409, 'DROVER_MIGRATION_WRONG_NODE', 'wrong node');
    Object.assign(m, { phase: u.phase, round: u.round ?? m.round, bytes_sent: u.bytes_sent ?? m.bytes_sent, error: u.error ?? m.error });
    if (!same) this.phases.push(u.phase);
    if (this.loseAnswerOf === u.phase) {
      this.loseAnswerOf = null;
      throw new DroverError('DROVER_CONTROL_UNREACHABLE', 'answer lost (fake)', { retryable: true });
    }
    return structuredClone(m);
  }

  async get(id: string): Promise<Migration> {
    this.reachable();
    const m = this.records.get(id);
    if (!m) throw refused(404, 'DROVER_MIGRATION_NOT_FOUND', `no migration ${id}`);
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

function refused(status: number, code: ErrorCode, message: string): DroverError {
  return new DroverError(code, message, { detail: { status } });
}

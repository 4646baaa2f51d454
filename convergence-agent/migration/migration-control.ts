/**
 * The migration steps' side of the control service: post a step (generation-fenced), read
 * the record back, and the proxies' route acks. The HTTP implementation wraps the typed
 * client (common/api-client.ts) and checks the answers with the model's schemas.
 *
 * `postStep` is the one place that decides what an answer means: a step that landed, one
 * that was refused (409/404: read the record and let `outcomeOf` say what it means), or no
 * answer (retried with capped backoff until a deadline, then `unanswered`).
 */
import type { TlsIdentity } from '#common/tls-client.ts';
import { ApiClient } from '#common/api-client.ts';
import type { MigrationUpdate } from '#common/channel.ts';
import { DroverError, isDroverError, toDroverError } from '#common/errors.ts';
import { Migration } from '#common/model.ts';
import { backoffDelay, type Backoff } from '#common/backoff.ts';
import type { Clock } from '#common/clock.ts';
import { outcomeOf, type StepOutcome } from './phases.ts';

export interface MigrationControl {
  /** Posts a step; throws DroverError (409 refusals keep the server's DROVER_MIGRATION_* code). */
  update(id: string, update: MigrationUpdate): Promise<Migration>;
  /** The record as the control service has it now. */
  get(id: string): Promise<Migration>;
  /** The current route table version. */
  routeVersion(): Promise<number>;
  /** Whether every live proxy applied route table `version` or newer. */
  routeAcks(version: number): Promise<{ acked: boolean; waiting_for: string[] }>;
}

export class HttpMigrationControl implements MigrationControl {
  private readonly client: ApiClient;

  /** `tls`: the node's certificate, for an https control service (docs/DESIGN.md §23). */
  constructor(controlUrl: string | readonly string[], requestTimeoutMs = 10_000, tls?: TlsIdentity) {
    this.client = new ApiClient({ baseUrl: controlUrl, timeoutMs: requestTimeoutMs, getAttempts: 1, ...(tls ? { tls } : {}) });
  }

  async update(id: string, update: MigrationUpdate): Promise<Migration> {
    return Migration.parse(await this.client.updateMigration(id, update));
  }

  async get(id: string): Promise<Migration> {
    return Migration.parse(await this.client.migration(id));
  }

  async routeVersion(): Promise<number> {
    return (await this.client.routes({})).version;
  }

  async routeAcks(version: number): Promise<{ acked: boolean; waiting_for: string[] }> {
    const answer = await this.client.routeAcks(version);
    return { acked: answer.acked, waiting_for: answer.waiting_for };
  }
}

export interface PostResult {
  outcome: StepOutcome | 'unanswered';
  /** The record as last read; null when there was no answer or the record is gone. */
  migration: Migration | null;
  /** Why a step was not accepted. */
  error: DroverError | null;
}

/** A refusal (the step reached the control service and was judged), as opposed to no answer. */
export function isRefusal(err: unknown): boolean {
  if (!isDroverError(err)) return false;
  const status = err.detail.status;
  return typeof status === 'number' && status >= 400 && status < 500;
}

/** Retries of a migration's calls to the control service: 250 ms doubling to 2 s. */
export const CONTROL_RETRY: Backoff = { initialMs: 250, capMs: 2_000 };

/**
 * Posts `update` until the control service answers or `deadlineMs` passes (backoff 250 ms
 * doubling to 2 s). A refusal is resolved by reading the record again: an earlier try may
 * have landed (`accepted`), or the record moved on. Never throws.
 */
export async function postStep(
  control: MigrationControl,
  clock: Clock,
  id: string,
  update: MigrationUpdate,
  options: { deadlineMs: number; signal?: AbortSignal },
): Promise<PostResult> {
  const deadline = clock.now() + options.deadlineMs;
  let error: DroverError = new DroverError('DROVER_MIGRATION_UNANSWERED', `migration ${id}: ${update.phase} was not posted`);
  for (let attempt = 0; ; attempt++) {
    try {
      return { outcome: 'accepted', migration: await control.update(id, update), error: null };
    } catch (err) {
      error = toDroverError(err);
      if (isRefusal(err)) {
        try {
          const record = await control.get(id);
          if (record.generation !== update.generation) return { outcome: 'stop', migration: record, error };
          return { outcome: outcomeOf(update.phase, record.phase), migration: record, error };
        } catch (readErr) {
          // The record is gone (404): nothing left to act on.
          if (isRefusal(readErr)) return { outcome: 'stop', migration: null, error };
          error = toDroverError(readErr);
        }
      }
    }
    if (options.signal?.aborted || clock.now() >= deadline) return { outcome: 'unanswered', migration: null, error };
    await clock.sleep(backoffDelay(CONTROL_RETRY, attempt + 1), options.signal);
  }
}

/** One (dataset, replica) pair of the replication loop and the small pure helpers around it. */
import type { Logger } from '#common/log.ts';
import type { Node, ReplicaStatus, ReplicationPolicy } from '#common/model.ts';
import { DEFAULT_RETENTION_GRID, parseRetentionGrid, type RetentionGrid } from '#common/retention-grid.ts';

export interface Grids {
  primary: RetentionGrid;
  replicas: RetentionGrid;
}

export interface Pair {
  key: string;
  datasetId: string;
  replica: string;
  node: Node | null;
  policy: ReplicationPolicy;
  paused: boolean;
  nextAt: number;
  running: AbortController | null;
  /** The running step itself (settles when it ended, however). */
  step: Promise<void> | null;
  failures: number;
  status: ReplicaStatus;
  /** The replica's snapshot guids after its last successful step (for the primary's pruning). */
  guids: Set<string> | null;
  /** How long its last step's tail took (holds, pruning): the next snapshot is taken ahead when the next step is due sooner. */
  tailMs: number;
  /**
   * The snapshot this pair's base tags hold on both sides, as its last settle left them (null:
   * not known — a new pair, a failure): the next step takes no step holds on it.
   */
  heldBase: string | null;
}

export function newPair(datasetId: string, replica: string, policy: ReplicationPolicy, now: number): Pair {
  return {
    key: `${datasetId}/${replica}`,
    datasetId,
    replica,
    node: null,
    policy,
    paused: false,
    nextAt: now,
    running: null,
    step: null,
    failures: 0,
    guids: null,
    tailMs: 0,
    heldBase: null,
    status: {
      dataset_id: datasetId,
      replica,
      state: 'seeding',
      newest_snapshot: null,
      newest_snapshot_created_at: null,
      lag_seconds: null,
      bytes_sent_total: 0,
      last_success_at: null,
      last_error: null,
    },
  };
}

/** The policy's grids; a grid that does not parse (the control service validates them) falls back to the default, logged. */
export function gridsOf(policy: ReplicationPolicy, log: Logger, datasetId: string): Grids {
  const parse = (text: string, side: string): RetentionGrid => {
    const parsed = parseRetentionGrid(text);
    if (parsed.ok) return parsed.grid;
    log.warn({ datasetId, side, errors: parsed.errors }, 'retention grid invalid: the default grid applies');
    const fallback = parseRetentionGrid(DEFAULT_RETENTION_GRID);
    if (!fallback.ok) throw new Error('the default retention grid does not parse');
    return fallback.grid;
  };
  return { primary: parse(policy.retention.primary, 'primary'), replicas: parse(policy.retention.replicas, 'replicas') };
}

/** `promise`, or a rejection with the signal's reason once it aborts. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

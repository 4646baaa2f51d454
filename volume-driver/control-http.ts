/**
 * ControlPlane over the control service's Flocker v1 HTTP API (control-service/README.md "API"),
 * through the one client (common/api-client.ts). The only file of the plugin that talks to
 * the control service; the client's errors are classified here once, into the plugin's
 * DROVER_CONTROL_* codes (docs/DESIGN.md §11).
 */
import type { TlsIdentity } from '#common/tls-client.ts';
import { ApiClient } from '#common/api-client.ts';
import { DroverError, isDroverError } from '#common/errors.ts';
import { backoffDelay } from '#common/backoff.ts';
import { systemClock } from '#common/clock.ts';
import {
  findByName,
  type ControlPlane,
  type CreateDatasetRequest,
  type DatasetConfig,
  type DatasetState,
  type LeaseInfo,
  type MigrationInfo,
  type NodeInfo,
} from './control.ts';

export interface HttpControlOptions {
  /** Base URL of the control service, e.g. `http://127.0.0.1:4523`. */
  baseUrl: string | readonly string[];
  /** The node's certificate, for an https control service (docs/DESIGN.md §23). */
  tls?: TlsIdentity;
  /** Per-request deadline; default 5 s. */
  timeoutMs?: number;
}

/** Flocker's conditional_create retried up to 20 times on 412; so do we. */
const CONDITIONAL_ATTEMPTS = 20;

export class HttpControl implements ControlPlane {
  private readonly client: ApiClient;

  constructor(options: HttpControlOptions) {
    // Docker waits on the plugin: no retries inside a call, the caller decides.
    this.client = new ApiClient({ baseUrl: options.baseUrl, timeoutMs: options.timeoutMs ?? 5_000, getAttempts: 1, ...(options.tls ? { tls: options.tls } : {}) });
  }

  async listDatasets(): Promise<DatasetConfig[]> {
    return (await classified(() => this.client.datasets())).datasets.map(normaliseDataset);
  }

  async createDataset(request: CreateDatasetRequest): Promise<{ dataset: DatasetConfig; created: boolean }> {
    for (let attempt = 1; attempt <= CONDITIONAL_ATTEMPTS; attempt++) {
      const listed = await classified(() => this.client.datasets());
      const existing = findByName(listed.datasets.map(normaliseDataset), request.name);
      if (existing) return { dataset: existing, created: false };
      const body = {
        primary: request.primary,
        maximum_size: request.maximumSize,
        metadata: { ...request.metadata, name: request.name },
      };
      try {
        return { dataset: normaliseDataset(await this.client.createDataset(body, { ifMatches: listed.tag })), created: true };
      } catch (err) {
        if (!(isDroverError(err) && err.detail.status === 412)) throw classify(err);
      }
      await systemClock.sleep(backoffDelay({ initialMs: 10, capMs: 500, jitter: 0.5 }, attempt));
    }
    throw new DroverError('DROVER_CONTROL_CONFLICT', `could not create dataset "${request.name}": the configuration kept changing (${CONDITIONAL_ATTEMPTS} attempts)`, {
      retryable: true,
    });
  }

  async moveDataset(datasetId: string, primary: string): Promise<DatasetConfig> {
    return normaliseDataset(await classified(() => this.client.moveDataset(datasetId, primary)));
  }

  async deleteDataset(datasetId: string): Promise<void> {
    await classified(() => this.client.deleteDataset(datasetId), [404]);
  }

  async datasetStates(): Promise<DatasetState[]> {
    return (await classified(() => this.client.datasetStates())).map((s) => ({
      dataset_id: s.dataset_id,
      primary: s.primary ?? null,
      path: s.path ?? null,
    }));
  }

  async listLeases(): Promise<LeaseInfo[]> {
    return (await classified(() => this.client.leases())).map((l) => ({ dataset_id: l.dataset_id, node_uuid: l.node_uuid, expires: l.expires ?? null }));
  }

  async acquireLease(datasetId: string, nodeUuid: string, expiresSeconds: number | null = null): Promise<LeaseInfo> {
    try {
      return (await this.client.acquireLease({ dataset_id: datasetId, node_uuid: nodeUuid, expires: expiresSeconds })).lease;
    } catch (err) {
      if (!(isDroverError(err) && err.detail.status === 409)) throw classify(err);
      const holder = typeof err.detail.node_uuid === 'string' ? err.detail.node_uuid : ((await this.listLeases()).find((l) => l.dataset_id === datasetId)?.node_uuid ?? null);
      throw new DroverError('DROVER_LEASE_HELD', `dataset ${datasetId} is leased to node ${holder ?? '(unknown)'}`, {
        detail: { dataset_id: datasetId, node_uuid: holder },
      });
    }
  }

  async releaseLease(datasetId: string): Promise<void> {
    await classified(() => this.client.releaseLease(datasetId), [404]);
  }

  async listNodes(): Promise<NodeInfo[]> {
    return (await classified(() => this.client.nodes())).map((n) => ({ uuid: n.uuid, host: n.host }));
  }

  async listMigrations(): Promise<MigrationInfo[]> {
    // An older control service without migrations: nothing to report, not an error.
    const list = (await classified(() => this.client.migrations(), [404])) ?? [];
    return list.map((m) => ({
      id: m.id,
      dataset_ids: m.dataset_ids,
      from: m.from,
      to: m.to,
      phase: m.phase,
      round: m.round,
      bytes_sent: m.bytes_sent,
      bytes_total: m.bytes_total,
      error: m.error,
    }));
  }
}

/** Runs a client call; an error answer whose status is in `absent` is `undefined` (idempotent deletes). */
async function classified<T>(call: () => Promise<T>): Promise<T>;
async function classified<T>(call: () => Promise<T>, absent: number[]): Promise<T | undefined>;
async function classified<T>(call: () => Promise<T>, absent: number[] = []): Promise<T | undefined> {
  try {
    return await call();
  } catch (err) {
    if (isDroverError(err) && absent.includes(err.detail.status as number)) return undefined;
    throw classify(err);
  }
}

function normaliseDataset(d: { dataset_id: string; primary: string; maximum_size?: number | null; metadata?: Record<string, string>; deleted?: boolean }): DatasetConfig {
  return {
    dataset_id: d.dataset_id,
    primary: d.primary,
    maximum_size: d.maximum_size ?? null,
    metadata: d.metadata ?? {},
    deleted: d.deleted ?? false,
  };
}

/**
 * The plugin's codes for an error answer: DROVER_CONTROL_NOT_FOUND (404),
 * DROVER_CONTROL_CONFLICT (409), else DROVER_CONTROL_HTTP; retryable on 5xx. No answer or a
 * bad one keeps the client's code (DROVER_CONTROL_UNREACHABLE, DROVER_CONTROL_BAD_ANSWER).
 */
function classify(err: unknown): unknown {
  if (!isDroverError(err) || typeof err.detail.status !== 'number' || err.code === 'DROVER_CONTROL_BAD_ANSWER') return err;
  const { status, method, path } = err.detail as { status: number; method: string; path: string };
  const code = status === 404 ? 'DROVER_CONTROL_NOT_FOUND' : status === 409 ? 'DROVER_CONTROL_CONFLICT' : 'DROVER_CONTROL_HTTP';
  return new DroverError(code, `control service answered ${status} to ${method} ${path}: ${err.message}`, {
    retryable: status >= 500,
    detail: { method, path, status },
    cause: err,
  });
}

/**
 * ControlPlane over the control service's Flocker v1 HTTP API (control-service/README.md "API").
 * The only file of the plugin that speaks HTTP to the control service; errors are
 * classified here once (docs/DESIGN.md §11).
 */
import { DroverError } from '#common/errors.ts';
import { sleep } from '#common/sleep.ts';
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
  baseUrl: string;
  /** Per-request deadline; default 5 s. */
  timeoutMs?: number;
}

interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

/** Flocker's conditional_create retried up to 20 times on 412; so do we. */
const CONDITIONAL_ATTEMPTS = 20;

export class HttpControl implements ControlPlane {
  private readonly base: string;
  private readonly timeoutMs: number;

  constructor(options: HttpControlOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  async listDatasets(): Promise<DatasetConfig[]> {
    const answer = await this.expect('GET', '/v1/configuration/datasets', [200]);
    return (answer.body as Partial<DatasetConfig>[]).map(normaliseDataset);
  }

  async createDataset(request: CreateDatasetRequest): Promise<{ dataset: DatasetConfig; created: boolean }> {
    for (let attempt = 1; attempt <= CONDITIONAL_ATTEMPTS; attempt++) {
      const listed = await this.expect('GET', '/v1/configuration/datasets', [200]);
      const existing = findByName((listed.body as Partial<DatasetConfig>[]).map(normaliseDataset), request.name);
      if (existing) return { dataset: existing, created: false };
      const tag = listed.headers.get('x-configuration-tag');
      const body = {
        primary: request.primary,
        maximum_size: request.maximumSize,
        metadata: { ...request.metadata, name: request.name },
      };
      const headers: Record<string, string> = tag ? { 'x-if-configuration-matches': tag } : {};
      const answer = await this.call('POST', '/v1/configuration/datasets', body, headers);
      if (answer.status === 201 || answer.status === 200) return { dataset: normaliseDataset(answer.body as Partial<DatasetConfig>), created: true };
      if (answer.status !== 412) throw httpError('POST', '/v1/configuration/datasets', answer);
      await sleep(10 + Math.random() * 40 * attempt);
    }
    throw new DroverError('DROVER_CONTROL_CONFLICT', `could not create dataset "${request.name}": the configuration kept changing (${CONDITIONAL_ATTEMPTS} attempts)`, {
      retryable: true,
    });
  }

  async moveDataset(datasetId: string, primary: string): Promise<DatasetConfig> {
    const answer = await this.expect('POST', `/v1/configuration/datasets/${datasetId}`, [200], { primary });
    return normaliseDataset(answer.body as Partial<DatasetConfig>);
  }

  async deleteDataset(datasetId: string): Promise<void> {
    await this.expect('DELETE', `/v1/configuration/datasets/${datasetId}`, [200, 204, 404]);
  }

  async datasetStates(): Promise<DatasetState[]> {
    const answer = await this.expect('GET', '/v1/state/datasets', [200]);
    return (answer.body as Partial<DatasetState>[]).map((s) => ({
      dataset_id: String(s.dataset_id),
      primary: s.primary ?? null,
      path: s.path ?? null,
    }));
  }

  async listLeases(): Promise<LeaseInfo[]> {
    const answer = await this.expect('GET', '/v1/configuration/leases', [200]);
    return (answer.body as LeaseInfo[]).map((l) => ({ dataset_id: l.dataset_id, node_uuid: l.node_uuid, expires: l.expires ?? null }));
  }

  async acquireLease(datasetId: string, nodeUuid: string): Promise<LeaseInfo> {
    const path = '/v1/configuration/leases';
    const answer = await this.call('POST', path, { dataset_id: datasetId, node_uuid: nodeUuid, expires: null });
    if (answer.status === 200 || answer.status === 201) return answer.body as LeaseInfo;
    if (answer.status === 409) {
      const detail = (answer.body as { detail?: { node_uuid?: unknown } } | null)?.detail;
      const holder = typeof detail?.node_uuid === 'string' ? detail.node_uuid : ((await this.listLeases()).find((l) => l.dataset_id === datasetId)?.node_uuid ?? null);
      throw new DroverError('DROVER_LEASE_HELD', `dataset ${datasetId} is leased to node ${holder ?? '(unknown)'}`, {
        detail: { dataset_id: datasetId, node_uuid: holder },
      });
    }
    throw httpError('POST', path, answer);
  }

  async releaseLease(datasetId: string): Promise<void> {
    await this.expect('DELETE', `/v1/configuration/leases/${datasetId}`, [200, 204, 404]);
  }

  async listNodes(): Promise<NodeInfo[]> {
    const answer = await this.expect('GET', '/v1/state/nodes', [200]);
    return (answer.body as NodeInfo[]).map((n) => ({ uuid: n.uuid, host: n.host }));
  }

  async listMigrations(): Promise<MigrationInfo[]> {
    const answer = await this.call('GET', '/v1/drover/migrations');
    // An older control service without migrations: nothing to report, not an error.
    if (answer.status === 404) return [];
    if (answer.status !== 200) throw httpError('GET', '/v1/drover/migrations', answer);
    const list = Array.isArray(answer.body) ? answer.body : ((answer.body as { migrations?: unknown[] }).migrations ?? []);
    return (list as Partial<MigrationInfo>[]).map((m) => ({
      id: String(m.id),
      dataset_ids: m.dataset_ids ?? [],
      from: String(m.from),
      to: String(m.to),
      phase: String(m.phase),
      round: m.round ?? 0,
      bytes_sent: m.bytes_sent ?? 0,
      bytes_total: m.bytes_total ?? null,
      error: m.error ?? null,
    }));
  }

  private async expect(method: string, path: string, ok: number[], body?: unknown): Promise<Answer> {
    const answer = await this.call(method, path, body);
    if (!ok.includes(answer.status)) throw httpError(method, path, answer);
    return answer;
  }

  private async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new DroverError('DROVER_CONTROL_UNREACHABLE', `control service at ${this.base} did not answer ${method} ${path}: ${reason(err)}`, {
        retryable: true,
        cause: err,
        detail: { method, path },
      });
    }
    const text = await response.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: response.status, body: parsed, headers: response.headers };
  }
}

function normaliseDataset(d: Partial<DatasetConfig>): DatasetConfig {
  return {
    dataset_id: String(d.dataset_id),
    primary: String(d.primary),
    maximum_size: d.maximum_size ?? null,
    metadata: d.metadata ?? {},
    deleted: d.deleted ?? false,
  };
}

function httpError(method: string, path: string, answer: Answer): DroverError {
  const description =
    answer.body && typeof answer.body === 'object' && 'description' in answer.body
      ? String((answer.body as { description: unknown }).description)
      : typeof answer.body === 'string'
        ? answer.body.slice(0, 200)
        : JSON.stringify(answer.body)?.slice(0, 200);
  const code = answer.status === 404 ? 'DROVER_CONTROL_NOT_FOUND' : answer.status === 409 ? 'DROVER_CONTROL_CONFLICT' : 'DROVER_CONTROL_HTTP';
  return new DroverError(code, `control service answered ${answer.status} to ${method} ${path}: ${description}`, {
    retryable: answer.status >= 500,
    detail: { method, path, status: answer.status },
  });
}

function reason(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}

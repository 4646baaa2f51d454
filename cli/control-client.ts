import { z } from 'zod';
import { DroverError } from '#common/errors.ts';
import { Dataset as StrictDataset, Migration as StrictMigration, PortMapping } from '#common/model.ts';

/** How long one API call may take before the CLI gives up on it. */
const CALL_TIMEOUT_MS = 30_000;

// The answers are read loosely: the CLI shows what it knows and ignores fields it does not
// (a newer control service may add some); it never writes them back.
const Dataset = StrictDataset.loose();
const Migration = StrictMigration.loose();
type Dataset = z.infer<typeof Dataset>;
type Migration = z.infer<typeof Migration>;
const StateNode = z.looseObject({
  uuid: z.string(),
  host: z.string(),
  state: z.enum(['known', 'unknown']).optional(),
  labels: z.record(z.string(), z.string()).optional(),
});
const ApplicationStatus = z.looseObject({
  name: z.string(),
  node_uuid: z.string().nullable().optional(),
  state: z.string(),
  health: z.string().nullable().optional(),
  unschedulable_reason: z.string().nullable().optional(),
  migration: Migration.nullable().optional(),
});
const ConfigContainer = z.looseObject({ name: z.string(), node_uuid: z.string().optional(), image: z.string(), ports: z.array(PortMapping).default([]) });
const StateContainer = z.looseObject({
  name: z.string(),
  node_uuid: z.string().optional(),
  running: z.boolean().optional(),
  health: z.string().optional(),
});
const StateDataset = z.looseObject({ dataset_id: z.string(), primary: z.string().optional(), path: z.string().optional() });
const DeployAnswer = z.looseObject({
  diff: z.object({ added: z.array(z.string()), changed: z.array(z.string()), removed: z.array(z.string()), unchanged: z.array(z.string()) }),
  migrations: z.array(Migration).optional(),
  unschedulable: z.record(z.string(), z.string()).optional(),
});
/** `POST /v1/drover/migrations` answers the migration, or `{ application, migration }`. */
const MoveAnswer = z.union([Migration, z.looseObject({ migration: Migration.nullable() })]);

export type StateNode = z.infer<typeof StateNode>;
export type ConfigContainer = z.infer<typeof ConfigContainer>;
export type StateContainer = z.infer<typeof StateContainer>;
export type ApplicationStatus = z.infer<typeof ApplicationStatus>;
export type StateDataset = z.infer<typeof StateDataset>;
export type DeployAnswer = z.infer<typeof DeployAnswer>;

export interface DeployRequest {
  project: string;
  compose: { file: string; text: string };
  topology: { file: string; text: string };
  dry_run: boolean;
}

/**
 * The CLI's HTTP client for the control service (Flocker's v1 paths plus `/v1/drover/…`).
 * XXX: a small fetch wrapper until the shared typed client (`common/api-client.ts`) lands.
 *
 * Errors: `DROVER_CONTROL_UNREACHABLE` when no answer came (refused, timed out);
 * `DROVER_API` for an error answer, with the server's message and the paths it named in
 * `detail.errors`.
 */
export class ControlClient {
  constructor(readonly baseUrl: string) {}

  deploy(request: DeployRequest): Promise<DeployAnswer> {
    return this.call('POST', '/v1/drover/deploy', DeployAnswer, request);
  }
  stateNodes(): Promise<StateNode[]> {
    return this.call('GET', '/v1/state/nodes', z.array(StateNode));
  }
  configContainers(): Promise<ConfigContainer[]> {
    return this.call('GET', '/v1/configuration/containers', z.array(ConfigContainer));
  }
  stateContainers(): Promise<StateContainer[]> {
    return this.call('GET', '/v1/state/containers', z.array(StateContainer));
  }
  /** drover's per-application summary: state (running, stopped, missing, unknown, unplaced), health, why unplaced. */
  applications(): Promise<ApplicationStatus[]> {
    return this.call('GET', '/v1/drover/applications', z.array(ApplicationStatus));
  }
  configDatasets(): Promise<Dataset[]> {
    return this.call('GET', '/v1/configuration/datasets', z.array(Dataset));
  }
  stateDatasets(): Promise<StateDataset[]> {
    return this.call('GET', '/v1/state/datasets', z.array(StateDataset));
  }
  createDataset(body: { primary: string; maximum_size?: number; metadata?: Record<string, string>; dataset_id?: string }): Promise<Dataset> {
    return this.call('POST', '/v1/configuration/datasets', Dataset, body);
  }
  moveDataset(datasetId: string, primary: string): Promise<Dataset> {
    return this.call('POST', `/v1/configuration/datasets/${encodeURIComponent(datasetId)}`, Dataset, { primary });
  }
  deleteDataset(datasetId: string): Promise<Dataset> {
    return this.call('DELETE', `/v1/configuration/datasets/${encodeURIComponent(datasetId)}`, Dataset);
  }
  /** Starts moving `application` to node `to`; null when there is nothing to move (it is there already). */
  async startMigration(application: string, to: string): Promise<Migration | null> {
    const answer = await this.call('POST', '/v1/drover/migrations', MoveAnswer, { application, to });
    return 'id' in answer ? (answer as Migration) : (answer.migration as Migration | null);
  }
  migration(id: string): Promise<Migration> {
    return this.call('GET', `/v1/drover/migrations/${encodeURIComponent(id)}`, Migration);
  }

  private async call<S extends z.ZodType>(method: string, path: string, schema: S, body?: unknown): Promise<z.infer<S>> {
    const url = new URL(path, this.baseUrl);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const cause = e.name === 'TimeoutError' ? `no answer in ${CALL_TIMEOUT_MS / 1000} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new DroverError('DROVER_CONTROL_UNREACHABLE', `cannot reach the control service at ${this.baseUrl} (${cause}); set --control or DROVER_CONTROL`, {
        retryable: true,
        detail: { url: url.href },
        cause: err,
      });
    }
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      json = text;
    }
    if (!response.ok) throw apiError(method, path, response.status, json);
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new DroverError('DROVER_API', `${method} ${path}: unexpected answer from the control service (${issue.path.join('.') || 'body'}: ${issue.message})`, {
        detail: { status: response.status },
      });
    }
    return parsed.data;
  }
}

/**
 * An error answer as the operator should read it: the server's message (drover's
 * `{ message }` or Flocker's `{ description }`) and every path it named.
 */
function apiError(method: string, path: string, status: number, body: unknown): DroverError {
  const record = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const message = typeof record.message === 'string' ? record.message : typeof record.description === 'string' ? record.description : typeof body === 'string' && body !== '' ? body : `HTTP ${status}`;
  const errors: string[] = [];
  const lists = [record.errors, (record.detail as Record<string, unknown> | undefined)?.issues];
  for (const list of lists) {
    if (!Array.isArray(list)) continue;
    for (const e of list) {
      if (typeof e === 'string') errors.push(e);
      else if (e !== null && typeof e === 'object') {
        const item = e as Record<string, unknown>;
        const where = Array.isArray(item.path) ? item.path.join('.') : typeof item.path === 'string' ? item.path : typeof item.key === 'string' ? item.key : typeof item.instancePath === 'string' ? item.instancePath : '';
        errors.push(where === '' ? String(item.message) : `${where}: ${String(item.message)}`);
      }
    }
  }
  return new DroverError('DROVER_API', message, { detail: { method, path, status, errors, code: record.code ?? null } });
}

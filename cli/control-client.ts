import { z } from 'zod';
import {
  API_PATHS,
  ApplicationStatus,
  DatasetMoveAnswer,
  DatasetState,
  DeployAnswer,
  NodeStateAnswer,
  type CreateDatasetBody,
  type DeployBody,
} from '#common/api.ts';
import { DroverError } from '#common/errors.ts';
import { Application, Dataset, Migration } from '#common/model.ts';

/** How long one API call may take before the CLI gives up on it. */
const CALL_TIMEOUT_MS = 30_000;

// Answers are read with the schemas the control service publishes (common/api.ts), loosely:
// a newer control service may add fields, which the CLI ignores (it never writes them back).

export type StateNode = z.infer<typeof NodeStateAnswer>;
export type ConfigContainer = z.infer<typeof Application>;
export type StateDataset = z.infer<typeof DatasetState>;
export type { ApplicationStatus, DeployAnswer };

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

  deploy(request: DeployBody): Promise<DeployAnswer> {
    return this.call('POST', API_PATHS.deploy, DeployAnswer.loose(), request);
  }
  /** Nodes, known (reporting) or unknown (silent), with address and labels. */
  stateNodes(): Promise<StateNode[]> {
    return this.call('GET', API_PATHS.nodes, z.array(NodeStateAnswer.loose()));
  }
  configContainers(): Promise<ConfigContainer[]> {
    return this.call('GET', API_PATHS.containers, z.array(Application.loose()));
  }
  /** drover's per-application summary: state (running, stopped, missing, unknown, unplaced), health, why unplaced. */
  applications(): Promise<ApplicationStatus[]> {
    return this.call('GET', API_PATHS.applications, z.array(ApplicationStatus.loose()));
  }
  configDatasets(): Promise<Dataset[]> {
    return this.call('GET', API_PATHS.datasets, z.array(Dataset.loose()));
  }
  stateDatasets(): Promise<StateDataset[]> {
    return this.call('GET', API_PATHS.datasetStates, z.array(DatasetState.loose()));
  }
  createDataset(body: CreateDatasetBody): Promise<Dataset> {
    return this.call('POST', API_PATHS.datasets, Dataset.loose(), body);
  }
  moveDataset(datasetId: string, primary: string): Promise<z.infer<typeof DatasetMoveAnswer>> {
    return this.call('POST', API_PATHS.dataset(encodeURIComponent(datasetId)), DatasetMoveAnswer.loose(), { primary });
  }
  deleteDataset(datasetId: string): Promise<Dataset> {
    return this.call('DELETE', API_PATHS.dataset(encodeURIComponent(datasetId)), Dataset.loose());
  }
  /** Starts moving `application` (with its data) to node `to`; 409 `DROVER_NOTHING_TO_MOVE` when it is there. */
  startMigration(application: string, to: string): Promise<Migration> {
    return this.call('POST', API_PATHS.migrations, Migration.loose(), { application, to });
  }
  migration(id: string): Promise<Migration> {
    return this.call('GET', API_PATHS.migration(encodeURIComponent(id)), Migration.loose());
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

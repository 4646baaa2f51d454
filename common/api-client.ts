/**
 * The typed client of the control service's API (common/api.ts, common/channel.ts), used by
 * the CLI, the agents, the proxies and the volume plugin. Uses the global fetch.
 *
 * Errors: an error answer throws DroverError with the server's `code` (or one derived from
 * the status: DROVER_NOT_FOUND, DROVER_CONFLICT, DROVER_CONFIGURATION_CHANGED, …), the
 * server's description as message, and `detail.status`/`detail.errors`; no answer throws
 * DROVER_CONTROL_UNREACHABLE (retryable). Idempotent GETs are retried on connection errors,
 * a bounded number of times; writes are never retried here.
 */
import type { z } from 'zod';
import {
  API_PATHS,
  IF_MATCHES_HEADER,
  TAG_HEADER,
  type ApplicationStatus,
  type ContainerState,
  type CreateDatasetBody,
  type DatasetState,
  type DeployAnswer,
  type DeployBody,
  type LeaseAnswer,
  type LeaseBody,
  type MoveApplicationAnswer,
  type NodeStateAnswer,
  type RouteAcksAnswer,
} from './api.ts';
import { CHANNEL_PATHS, type AgentDesired, type MigrationUpdate, type RouteAck, type RouteTable } from './channel.ts';
import { codeOfAnswer, DroverError } from './errors.ts';
import { parseEventStream, type StreamEvent } from './event-stream.ts';
import type { Application, Dataset, Migration, NodeReport } from './model.ts';
import { sleep } from './sleep.ts';

export type { StreamEvent };

export interface ApiClientOptions {
  /** e.g. `http://127.0.0.1:4523`. */
  baseUrl: string;
  /** Deadline of one call (long-polls add their wait). Default 10 s. */
  timeoutMs?: number;
  /** Attempts of an idempotent GET when the connection fails. Default 3. */
  getAttempts?: number;
}

export interface WriteOptions {
  /** `X-If-Configuration-Matches`: apply only if the configuration still has this tag (else 412). */
  ifMatches?: string;
}

export interface PollOptions {
  /** The version the caller has; absent: answer at once. */
  after?: number;
  /** How long the server may wait for a change. Default 25 s. */
  waitMs?: number;
  signal?: AbortSignal;
}

type ContainerMoveAnswer = Application & { migration: Migration | null };
type DatasetMoveAnswer = Dataset & { migration: Migration | null };
type Input<T extends z.ZodType> = z.input<T>;

interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

export class ApiClient {
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly getAttempts: number;

  constructor(options: ApiClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.getAttempts = Math.max(1, options.getAttempts ?? 3);
  }

  // ------------------------------------------------------------ Flocker v1

  async version(): Promise<{ flocker: string; drover: string }> {
    return (await this.get(API_PATHS.version)).body as { flocker: string; drover: string };
  }

  async datasets(): Promise<{ datasets: Dataset[]; tag: string }> {
    const answer = await this.get<Dataset[]>(API_PATHS.datasets);
    return { datasets: answer.body, tag: answer.headers.get(TAG_HEADER) ?? '' };
  }

  async createDataset(body: CreateDatasetBody, options: WriteOptions = {}): Promise<Dataset> {
    return (await this.send<Dataset>('POST', API_PATHS.datasets, body, options)).body;
  }

  /** Starts moving the dataset (a migration); `primary` changes at handoff. */
  async moveDataset(datasetId: string, primary: string, options: WriteOptions = {}): Promise<DatasetMoveAnswer> {
    return (await this.send<DatasetMoveAnswer>('POST', API_PATHS.dataset(datasetId), { primary }, options)).body;
  }

  async deleteDataset(datasetId: string, options: WriteOptions = {}): Promise<Dataset> {
    return (await this.send<Dataset>('DELETE', API_PATHS.dataset(datasetId), undefined, options)).body;
  }

  async datasetStates(): Promise<DatasetState[]> {
    return (await this.get<DatasetState[]>(API_PATHS.datasetStates)).body;
  }

  async containers(): Promise<{ containers: Application[]; tag: string }> {
    const answer = await this.get<Application[]>(API_PATHS.containers);
    return { containers: answer.body, tag: answer.headers.get(TAG_HEADER) ?? '' };
  }

  async createContainer(app: Input<typeof Application>, options: WriteOptions = {}): Promise<Application> {
    return (await this.send<Application>('POST', API_PATHS.containers, app, options)).body;
  }

  /** Starts moving the container with its data (a migration); `node_uuid` changes at handoff. */
  async moveContainer(name: string, nodeUuid: string, options: WriteOptions = {}): Promise<ContainerMoveAnswer> {
    return (await this.send<ContainerMoveAnswer>('POST', API_PATHS.container(name), { node_uuid: nodeUuid }, options)).body;
  }

  async deleteContainer(name: string, options: WriteOptions = {}): Promise<void> {
    await this.send('DELETE', API_PATHS.container(name), undefined, options);
  }

  async containerStates(): Promise<ContainerState[]> {
    return (await this.get<ContainerState[]>(API_PATHS.containerStates)).body;
  }

  async nodes(): Promise<NodeStateAnswer[]> {
    return (await this.get<NodeStateAnswer[]>(API_PATHS.nodes)).body;
  }

  /** The node uuid of a boot era; null when no node has reported it (yet). */
  async nodeByEra(era: string): Promise<string | null> {
    try {
      return (await this.get<{ uuid: string }>(API_PATHS.nodeByEra(encodeURIComponent(era)))).body.uuid;
    } catch (err) {
      if (err instanceof DroverError && err.detail.status === 404) return null;
      throw err;
    }
  }

  async leases(): Promise<LeaseAnswer[]> {
    return (await this.get<LeaseAnswer[]>(API_PATHS.leases)).body;
  }

  /** Takes or renews a lease (`expires` in seconds, null: never). */
  async acquireLease(body: LeaseBody): Promise<{ lease: LeaseAnswer; created: boolean }> {
    const answer = await this.send<LeaseAnswer>('POST', API_PATHS.leases, body);
    return { lease: answer.body, created: answer.status === 201 };
  }

  async releaseLease(datasetId: string): Promise<LeaseAnswer> {
    return (await this.send<LeaseAnswer>('DELETE', API_PATHS.lease(datasetId))).body;
  }

  /**
   * Flocker's `conditional_create`: reads the tag, writes with `X-If-Configuration-Matches`,
   * and on 412 (someone else wrote in between) reads and tries again, up to `attempts` times.
   */
  async conditional<T>(write: (tag: string) => Promise<T>, attempts = 20): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const { tag } = await this.datasets();
      try {
        return await write(tag);
      } catch (err) {
        if (!(err instanceof DroverError) || err.detail.status !== 412 || attempt >= attempts) throw err;
        await sleep(Math.min(500, 10 * attempt) + Math.random() * 20);
      }
    }
  }

  // ------------------------------------------------------------ drover

  async deploy(body: DeployBody): Promise<DeployAnswer> {
    return (await this.send<DeployAnswer>('POST', API_PATHS.deploy, body, {}, 60_000)).body;
  }

  async applications(): Promise<ApplicationStatus[]> {
    return (await this.get<ApplicationStatus[]>(API_PATHS.applications)).body;
  }

  async application(name: string): Promise<ApplicationStatus> {
    return (await this.get<ApplicationStatus>(API_PATHS.application(name))).body;
  }

  /** Moves an application with its data; `migration` is null when it already runs there. */
  async moveApplication(name: string, nodeUuid: string): Promise<MoveApplicationAnswer> {
    return (await this.send<MoveApplicationAnswer>('POST', API_PATHS.moveApplication(name), { node_uuid: nodeUuid })).body;
  }

  async migrations(): Promise<Migration[]> {
    return (await this.get<Migration[]>(API_PATHS.migrations)).body;
  }

  async migration(id: string): Promise<Migration> {
    return (await this.get<Migration>(API_PATHS.migration(id))).body;
  }

  async openapi(): Promise<Record<string, unknown>> {
    return (await this.get<Record<string, unknown>>(API_PATHS.openapi)).body;
  }

  /**
   * The event stream (server-sent events) until `signal` aborts or the server ends it.
   * Pass the last seen id as `lastEventId` to resume after a reconnect.
   */
  async *events(options: { signal?: AbortSignal; lastEventId?: string; types?: string[] } = {}): AsyncGenerator<StreamEvent> {
    const query = options.types ? `?types=${encodeURIComponent(options.types.join(','))}` : '';
    const response = await this.fetch('GET', API_PATHS.events + query, undefined, { accept: 'text/event-stream', ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}) }, options.signal);
    if (!response.ok || !response.body) throw await this.errorOf('GET', API_PATHS.events, response);
    try {
      yield* parseEventStream(response.body as AsyncIterable<Uint8Array>);
    } catch (err) {
      if (options.signal?.aborted) return;
      throw err;
    }
  }

  // ------------------------------------------------------------ agent channel

  async report(report: Input<typeof NodeReport>): Promise<{ version: number }> {
    return (await this.send<{ version: number }>('POST', CHANNEL_PATHS.report, report)).body;
  }

  /** Long-poll of a node's desired view: answers when it differs from `after`, or after `waitMs`. */
  async desired(nodeUuid: string, options: PollOptions = {}): Promise<AgentDesired> {
    return (await this.poll<AgentDesired>(CHANNEL_PATHS.desired(nodeUuid), options, {})).body;
  }

  /** Long-poll of the route table; `nodeUuid` marks this proxy live for route acks. */
  async routes(options: PollOptions & { nodeUuid?: string } = {}): Promise<RouteTable> {
    return (await this.poll<RouteTable>(CHANNEL_PATHS.routes, options, options.nodeUuid ? { node_uuid: options.nodeUuid } : {})).body;
  }

  async ackRoutes(ack: RouteAck): Promise<void> {
    await this.send('POST', CHANNEL_PATHS.routeAck, ack);
  }

  /** Whether every live proxy applied route table `version` or newer. */
  async routeAcks(version: number): Promise<RouteAcksAnswer> {
    return (await this.get<RouteAcksAnswer>(`${API_PATHS.routeAcks}?version=${version}`)).body;
  }

  /** An agent's migration step; 409 (DroverError) on a stale generation, the wrong node or phase. */
  async updateMigration(id: string, update: MigrationUpdate): Promise<Migration> {
    return (await this.send<Migration>('POST', CHANNEL_PATHS.migrationUpdate(id), update)).body;
  }

  // ------------------------------------------------------------ plumbing

  private poll<T>(path: string, options: PollOptions, extra: Record<string, string>): Promise<Answer<T>> {
    const query = new URLSearchParams(extra);
    if (options.after !== undefined) query.set('after', String(options.after));
    const waitMs = options.waitMs ?? 25_000;
    query.set('wait_ms', String(waitMs));
    return this.get<T>(`${path}?${query}`, options.signal, this.timeoutMs + waitMs);
  }

  private async get<T>(path: string, signal?: AbortSignal, timeoutMs = this.timeoutMs): Promise<Answer<T>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.call<T>('GET', path, undefined, {}, signal, timeoutMs);
      } catch (err) {
        const unreachable = err instanceof DroverError && err.code === 'DROVER_CONTROL_UNREACHABLE';
        if (!unreachable || attempt >= this.getAttempts || signal?.aborted) throw err;
        await sleep(100 * 3 ** (attempt - 1), signal);
      }
    }
  }

  private send<T>(method: 'POST' | 'DELETE', path: string, body?: unknown, options: WriteOptions = {}, timeoutMs = this.timeoutMs): Promise<Answer<T>> {
    return this.call<T>(method, path, body, options.ifMatches ? { [IF_MATCHES_HEADER]: options.ifMatches } : {}, undefined, timeoutMs);
  }

  private async call<T>(method: string, path: string, body: unknown, headers: Record<string, string>, signal: AbortSignal | undefined, timeoutMs: number): Promise<Answer<T>> {
    const response = await this.fetch(method, path, body, headers, signal, timeoutMs);
    if (!response.ok) throw await this.errorOf(method, path, response);
    const text = await response.text();
    return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T, headers: response.headers };
  }

  private async fetch(method: string, path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal, timeoutMs?: number): Promise<Response> {
    const signals = [signal, timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs)].filter((s): s is AbortSignal => s !== undefined);
    try {
      return await fetch(this.base + path, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? null : JSON.stringify(body),
        signal: signals.length === 0 ? null : AbortSignal.any(signals),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
      throw new DroverError('DROVER_CONTROL_UNREACHABLE', `control service at ${this.base} did not answer ${method} ${path} (${cause})`, {
        retryable: true,
        cause: err,
        detail: { method, path },
      });
    }
  }

  private async errorOf(method: string, path: string, response: Response): Promise<DroverError> {
    const text = await response.text().catch(() => '');
    let body: { description?: unknown; code?: unknown; errors?: unknown; detail?: unknown; incident?: unknown } = {};
    try {
      body = JSON.parse(text);
    } catch {
      body = { description: text.slice(0, 500) };
    }
    const status = response.status;
    const code = codeOfAnswer(status, body.code);
    const description = typeof body.description === 'string' && body.description !== '' ? body.description : `HTTP ${status}`;
    return new DroverError(code, description, {
      retryable: status >= 500,
      detail: {
        ...(typeof body.detail === 'object' && body.detail !== null ? (body.detail as Record<string, unknown>) : {}),
        status,
        method,
        path,
        ...(Array.isArray(body.errors) ? { errors: body.errors } : {}),
        ...(typeof body.incident === 'string' ? { incident: body.incident } : {}),
      },
    });
  }
}

/**
 * The one client of the control service's API, built on the route table (api-routes.ts):
 * `call(key, input)` fills the route's path, sends, and parses the answer with the schema
 * the table gives for its status — an answer that does not match throws
 * DROVER_CONTROL_BAD_ANSWER (retryable) naming the route and the paths that failed. The
 * typed methods below are `call` with the answer shaped for their callers. Used by the
 * CLI, the agents, the proxies and the volume plugin. Uses mutual TLS (tls-client.ts) with
 * the caller's certificate, or the global fetch for a plain loopback control service.
 *
 * Errors: an error answer throws DroverError with the server's `code` (or the registry's
 * generic code of its status, common/errors.ts `codeOfAnswer`), the server's description as
 * message, and `detail.status`/`detail.errors`; no answer throws DROVER_CONTROL_UNREACHABLE
 * (retryable). Idempotent GETs are retried on connection errors, a bounded number of
 * times; writes are never retried here.
 */
import type { z } from 'zod';
import { IF_MATCHES_HEADER, TAG_HEADER, type CreateDatasetBody, type DeployBody, type LeaseBody, type MoveApplicationBody } from './api.ts';
import { fillPath, ROUTES, type RouteAnswer, type RouteKey, type Routes } from './api-routes.ts';
import type { MigrationUpdate, RouteAck } from './channel.ts';
import type { RestoreBody } from './backup.ts';
import { codeOfAnswer, DroverError } from './errors.ts';
import { parseEventStream, type StreamEvent } from './event-stream.ts';
import type { Application, NodeReport, ReplicationPolicy, ReplicationReport } from './model.ts';
import { backoffDelay } from './backoff.ts';
import { systemClock } from './clock.ts';
import { tlsFetch, type FetchLike, type TlsIdentity } from './tls-client.ts';
import { anyHttps, parseControlEndpoints } from './control-endpoints.ts';
import { FailoverTransport } from './failover-transport.ts';
import { CORR_HEADER } from './log.ts';


/** An idempotent GET whose connection failed: 100 ms, then 300 ms, … (capped). */
const GET_RETRY = { initialMs: 100, factor: 3, capMs: 2_700 };
/** A conditional write answered 412: someone wrote in between; retry soon, spread out. */
const CONDITIONAL_RETRY = { initialMs: 10, capMs: 500, jitter: 0.5 };

export type { StreamEvent };

export interface ApiClientOptions {
  /**
   * e.g. `https://127.0.0.1:4523` (`http://` only for a control service asked to listen plain
   * on loopback), or several: a list or `https://a:4523,https://b:4523`. With several the
   * client fails over between them and follows redirects only within them
   * (failover-transport.ts, docs/DESIGN.md §29).
   */
  baseUrl: string | readonly string[];
  /**
   * The cluster CA and this caller's certificate and key (mutual TLS, docs/DESIGN.md §23):
   * used for an `https://` base URL; the server is trusted only if the CA signed it.
   */
  tls?: TlsIdentity;
  /** Deadline of one attempt at one endpoint (long-polls add their wait). Default 10 s. */
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

type Field<R, F extends string> = R extends { [P in F]: infer S extends z.ZodType } ? S : never;
type Part<R, F extends string, Optional extends boolean> = [Field<R, F>] extends [never]
  ? { [P in F]?: never }
  : Optional extends true
    ? { [P in F]?: z.input<Field<R, F>> }
    : { [P in F]: z.input<Field<R, F>> };

/** What `call(key, …)` sends: the route's path parameters, query and body, as the table types them. */
export type CallInput<K extends RouteKey> = Part<Routes[K], 'params', false> &
  Part<Routes[K], 'query', true> &
  Part<Routes[K], 'body', false> & {
    /** Request headers (e.g. `x-if-configuration-matches`). */
    headers?: Record<string, string>;
    signal?: AbortSignal;
    /** This call's deadline instead of the client's. */
    timeoutMs?: number;
  };

type SuccessStatus = 200 | 201 | 202 | 204;
type AnswerBody<A> = A extends { schema: infer S extends z.ZodType } ? z.output<S> : undefined;
/** The body of a successful answer: the union over the route's 2xx answers. */
export type CallBody<K extends RouteKey> = { [S in keyof Routes[K]['answers']]: S extends SuccessStatus ? AnswerBody<Routes[K]['answers'][S]> : never }[keyof Routes[K]['answers']];

export interface CallAnswer<K extends RouteKey> {
  status: number;
  body: CallBody<K>;
  headers: Headers;
}

export class ApiClient {
  private readonly transport: FailoverTransport;
  private readonly timeoutMs: number;
  private readonly getAttempts: number;

  /** @throws DROVER_CONFIG_INVALID when `baseUrl` names no endpoint or a bad one */
  constructor(options: ApiClientOptions) {
    const endpoints = parseControlEndpoints(options.baseUrl);
    // Redirects are the transport's to follow (only within the list), never fetch's.
    const plain: FetchLike = (url, init) => fetch(url, { ...init, redirect: 'manual' });
    const send = options.tls !== undefined && anyHttps(endpoints) ? tlsFetch(options.tls) : plain;
    this.transport = new FailoverTransport(endpoints, send);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.getAttempts = Math.max(1, options.getAttempts ?? 3);
  }

  /**
   * Calls route `key` of the table: fills its path from `input.params`, adds `input.query`
   * (in its key order, undefined values left out), sends `input.body` as JSON, and returns
   * the answer parsed with the schema of its status. A GET is retried on connection errors.
   * @throws DroverError: the server's code on an error answer; DROVER_CONTROL_UNREACHABLE;
   *   DROVER_CONTROL_BAD_ANSWER when the answer is not what the table says.
   */
  async call<K extends RouteKey>(key: K, input: CallInput<K>): Promise<CallAnswer<K>> {
    const spec = ROUTES[key];
    const { params, query, body, headers = {}, signal, timeoutMs = this.timeoutMs } = input as { params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal; timeoutMs?: number };
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) if (value !== undefined) search.set(name, String(value));
    const path = fillPath(spec.path, params) + (search.size > 0 ? `?${search}` : '');
    const attempts = spec.method === 'GET' ? this.getAttempts : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await this.fetch(spec.method, path, body, headers, signal, timeoutMs);
        if (!response.ok) throw await this.errorOf(spec.method, path, response);
        return { status: response.status, body: checked(key, spec.method, path, response.status, await response.text()) as CallBody<K>, headers: response.headers };
      } catch (err) {
        const unreachable = err instanceof DroverError && err.code === 'DROVER_CONTROL_UNREACHABLE';
        if (!unreachable || attempt >= attempts || signal?.aborted) throw err;
        await systemClock.sleep(backoffDelay(GET_RETRY, attempt), signal);
      }
    }
  }

  // ------------------------------------------------------------ Flocker v1

  async version(): Promise<CallBody<'version'>> {
    return (await this.call('version', {})).body;
  }

  async datasets(): Promise<{ datasets: CallBody<'datasets'>; tag: string }> {
    const answer = await this.call('datasets', {});
    return { datasets: answer.body, tag: answer.headers.get(TAG_HEADER) ?? '' };
  }

  async createDataset(body: CreateDatasetBody, options: WriteOptions = {}): Promise<CallBody<'createDataset'>> {
    return (await this.call('createDataset', { body, headers: conditional(options) })).body;
  }

  /** Starts moving the dataset (a migration); `primary` changes at handoff. */
  async moveDataset(datasetId: string, primary: string, options: WriteOptions = {}): Promise<CallBody<'moveDataset'>> {
    return (await this.call('moveDataset', { params: { dataset_id: datasetId }, body: { primary }, headers: conditional(options) })).body;
  }

  async deleteDataset(datasetId: string, options: WriteOptions = {}): Promise<CallBody<'deleteDataset'>> {
    return (await this.call('deleteDataset', { params: { dataset_id: datasetId }, headers: conditional(options) })).body;
  }

  async datasetStates(): Promise<CallBody<'datasetStates'>> {
    return (await this.call('datasetStates', {})).body;
  }

  async containers(): Promise<{ containers: CallBody<'containers'>; tag: string }> {
    const answer = await this.call('containers', {});
    return { containers: answer.body, tag: answer.headers.get(TAG_HEADER) ?? '' };
  }

  async createContainer(app: z.input<typeof Application>, options: WriteOptions = {}): Promise<CallBody<'createContainer'>> {
    return (await this.call('createContainer', { body: app, headers: conditional(options) })).body;
  }

  /** Starts moving the container with its data (a migration); `node_uuid` changes at handoff. */
  async moveContainer(name: string, nodeUuid: string, options: WriteOptions = {}): Promise<CallBody<'moveContainer'>> {
    return (await this.call('moveContainer', { params: { name }, body: { node_uuid: nodeUuid }, headers: conditional(options) })).body;
  }

  async deleteContainer(name: string, options: WriteOptions = {}): Promise<void> {
    await this.call('deleteContainer', { params: { name }, headers: conditional(options) });
  }

  async containerStates(): Promise<CallBody<'containerStates'>> {
    return (await this.call('containerStates', {})).body;
  }

  async nodes(): Promise<CallBody<'nodes'>> {
    return (await this.call('nodes', {})).body;
  }

  /** The node uuid of a boot era; null when no node has reported it (yet). */
  async nodeByEra(era: string): Promise<string | null> {
    try {
      return (await this.call('nodeByEra', { params: { era } })).body.uuid;
    } catch (err) {
      if (err instanceof DroverError && err.detail.status === 404) return null;
      throw err;
    }
  }

  async leases(): Promise<CallBody<'leases'>> {
    return (await this.call('leases', {})).body;
  }

  /** Takes or renews a lease (`expires` in seconds, null: never). */
  async acquireLease(body: LeaseBody): Promise<{ lease: CallBody<'acquireLease'>; created: boolean }> {
    const answer = await this.call('acquireLease', { body });
    return { lease: answer.body, created: answer.status === 201 };
  }

  async releaseLease(datasetId: string): Promise<CallBody<'releaseLease'>> {
    return (await this.call('releaseLease', { params: { dataset_id: datasetId } })).body;
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
        await systemClock.sleep(backoffDelay(CONDITIONAL_RETRY, attempt));
      }
    }
  }

  // ------------------------------------------------------------ drover

  /** The whole desired configuration with its cluster, version and tag (docs/DESIGN.md §29). */
  async backup(): Promise<CallBody<'backup'>> {
    return (await this.call('backup', { timeoutMs: 60_000 })).body;
  }

  /** Replaces the desired configuration with a backup's; refused whole, naming every problem. */
  async restore(body: RestoreBody): Promise<CallBody<'restore'>> {
    return (await this.call('restore', { body, timeoutMs: 120_000 })).body;
  }

  async deploy(body: DeployBody): Promise<CallBody<'deploy'>> {
    return (await this.call('deploy', { body, timeoutMs: 60_000 })).body;
  }

  async applications(): Promise<CallBody<'applications'>> {
    return (await this.call('applications', {})).body;
  }

  async application(name: string): Promise<CallBody<'application'>> {
    return (await this.call('application', { params: { name } })).body;
  }

  /** Moves an application with its data; `migration` is null when it already runs there. */
  /** `force` and the rest: a forced move when the source is silent (docs/DESIGN.md §19). */
  async moveApplication(name: string, nodeUuid: string, force: Omit<MoveApplicationBody, 'node_uuid'> = {}): Promise<CallBody<'moveApplication'>> {
    return (await this.call('moveApplication', { params: { name }, body: { node_uuid: nodeUuid, ...force } })).body;
  }

  /** Sets how many instances `name` runs (docs/DESIGN.md §30); answers its status. */
  async scaleApplication(name: string, instances: number, options: WriteOptions = {}): Promise<CallBody<'scaleApplication'>> {
    return (await this.call('scaleApplication', { params: { name }, body: { instances }, headers: conditional(options) })).body;
  }

  async cordonNode(uuid: string): Promise<CallBody<'cordonNode'>> {
    return (await this.call('cordonNode', { params: { uuid } })).body;
  }

  async uncordonNode(uuid: string): Promise<CallBody<'uncordonNode'>> {
    return (await this.call('uncordonNode', { params: { uuid } })).body;
  }

  async drainNode(uuid: string): Promise<CallBody<'drainNode'>> {
    return (await this.call('drainNode', { params: { uuid } })).body;
  }

  /** Accepts the node's new ssh host key (`fingerprint`: the one checked on the node). */
  async trustHostKey(uuid: string, fingerprint?: string): Promise<CallBody<'trustHostKey'>> {
    return (await this.call('trustHostKey', { params: { uuid }, body: fingerprint === undefined ? {} : { fingerprint } })).body;
  }

  async nodeScheduling(uuid: string): Promise<CallBody<'nodeScheduling'>> {
    return (await this.call('nodeScheduling', { params: { uuid } })).body;
  }

  /** Every replicated dataset with its replicas' state and lag (docs/DESIGN.md §17). */
  async replication(): Promise<CallBody<'replication'>> {
    return (await this.call('replication', {})).body;
  }

  /** Sets a dataset's replication policy (null: stop replicating); answers the dataset. */
  async setDatasetReplication(datasetId: string, policy: z.input<typeof ReplicationPolicy> | null, options: WriteOptions = {}): Promise<CallBody<'setDatasetReplication'>> {
    return (await this.call('setDatasetReplication', { params: { dataset_id: datasetId }, body: policy, headers: conditional(options) })).body;
  }

  /** Sets an application's replication policy, applied to every dataset it mounts; answers the application. */
  async setApplicationReplication(name: string, policy: z.input<typeof ReplicationPolicy> | null, options: WriteOptions = {}): Promise<CallBody<'setApplicationReplication'>> {
    return (await this.call('setApplicationReplication', { params: { name }, body: policy, headers: conditional(options) })).body;
  }

  async migrations(): Promise<CallBody<'migrations'>> {
    return (await this.call('migrations', {})).body;
  }

  async migration(id: string): Promise<CallBody<'migration'>> {
    return (await this.call('migration', { params: { id }, headers: { [CORR_HEADER]: id } })).body;
  }

  /** Cancels a migration that has not handed off; 409 (DROVER_MIGRATION_BAD_TRANSITION) says why otherwise. */
  async cancelMigration(id: string): Promise<CallBody<'cancelMigration'>> {
    return (await this.call('cancelMigration', { params: { id } })).body;
  }

  async openapi(): Promise<CallBody<'openapi'>> {
    return (await this.call('openapi', {})).body;
  }

  /**
   * The event stream (server-sent events) until `signal` aborts or the server ends it.
   * Pass the last seen id as `lastEventId` (or `since`) to resume after a reconnect; `since: 0`
   * replays every event the server keeps; `follow: false` ends after that replay.
   */
  async *events(options: { signal?: AbortSignal; lastEventId?: string; types?: string[]; since?: number; follow?: boolean } = {}): AsyncGenerator<StreamEvent> {
    const search = new URLSearchParams();
    if (options.types) search.set('types', options.types.join(','));
    if (options.since !== undefined) search.set('since', String(options.since));
    if (options.follow === false) search.set('follow', 'false');
    const path = ROUTES.events.path + (search.size > 0 ? `?${search}` : '');
    const response = await this.fetch('GET', path, undefined, { accept: 'text/event-stream', ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}) }, options.signal);
    if (!response.ok || !response.body) throw await this.errorOf('GET', path, response);
    try {
      yield* parseEventStream(response.body as AsyncIterable<Uint8Array>);
    } catch (err) {
      if (options.signal?.aborted) return;
      throw err;
    }
  }

  /**
   * An application's output, from the agent of the node it runs on now (docs/DESIGN.md §27):
   * each line as `{stream, text}`, the last `tail` (default all), and with `follow` each new
   * one until `signal` aborts or the server ends it.
   */
  async *applicationLogs(name: string, options: { tail?: number; follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<{ stream: 'stdout' | 'stderr'; text: string }> {
    const search = new URLSearchParams();
    if (options.tail !== undefined) search.set('tail', String(options.tail));
    if (options.follow) search.set('follow', 'true');
    const path = fillPath(ROUTES.applicationLogs.path, { name }) + (search.size > 0 ? `?${search}` : '');
    const response = await this.fetch('GET', path, undefined, { accept: 'application/x-ndjson' }, options.signal, options.follow ? undefined : this.timeoutMs * 6);
    if (!response.ok || !response.body) throw await this.errorOf('GET', path, response);
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          if (line !== '') yield JSON.parse(line) as { stream: 'stdout' | 'stderr'; text: string };
        }
      }
    } catch (err) {
      if (options.signal?.aborted) return;
      throw new DroverError('DROVER_CONTROL_UNREACHABLE', `the logs of "${name}" stopped coming: ${(err as Error).message}`, { retryable: true, cause: err, detail: { path } });
    }
  }

  // ------------------------------------------------------------ agent channel

  async report(report: z.input<typeof NodeReport>): Promise<CallBody<'report'>> {
    return (await this.call('report', { body: report })).body;
  }

  /** A primary's replication status alone (docs/DESIGN.md §38); `merged: false` when the control service held a newer one. */
  async replicationReport(report: z.input<typeof ReplicationReport>, signal?: AbortSignal): Promise<CallBody<'replicationReport'>> {
    return (await this.call('replicationReport', { body: report, ...(signal ? { signal } : {}) })).body;
  }

  /** Long-poll of a node's desired view: answers when it differs from `after`, or after `waitMs`. */
  async desired(nodeUuid: string, options: PollOptions = {}): Promise<CallBody<'desired'>> {
    return (await this.call('desired', { params: { node_uuid: nodeUuid }, ...poll(options, {}, this.timeoutMs) })).body;
  }

  /** Stores a secret (sealed); answers its id, for an application's `secret_environment` or secret files. */
  async createSecret(value: Uint8Array): Promise<CallBody<'createSecret'>> {
    return (await this.call('createSecret', { body: { content_base64: Buffer.from(value).toString('base64') } })).body;
  }

  /** A file's content for an application in the node's view (docs/DESIGN.md §22); DROVER_NOT_FOUND otherwise. */
  async agentFile(nodeUuid: string, id: string): Promise<CallBody<'agentFile'>> {
    return (await this.call('agentFile', { params: { node_uuid: nodeUuid, id } })).body;
  }

  /** Long-poll of the route table; `nodeUuid` marks this proxy live for route acks. */
  async routes(options: PollOptions & { nodeUuid?: string } = {}): Promise<CallBody<'routes'>> {
    return (await this.call('routes', poll(options, { node_uuid: options.nodeUuid }, this.timeoutMs))).body;
  }

  async ackRoutes(ack: RouteAck): Promise<void> {
    await this.call('ackRoutes', { body: ack });
  }

  /** Whether every live proxy applied route table `version` or newer. */
  async routeAcks(version: number): Promise<CallBody<'routeAcks'>> {
    return (await this.call('routeAcks', { query: { version } })).body;
  }

  /** An agent's migration step; 409 (DroverError) on a stale generation, the wrong node or phase. */
  async updateMigration(id: string, update: MigrationUpdate): Promise<CallBody<'updateMigration'>> {
    // The migration's id is the step's correlation id, in the control service's log too.
    return (await this.call('updateMigration', { params: { id }, body: update, headers: { [CORR_HEADER]: id } })).body;
  }

  // ------------------------------------------------------------ plumbing

  /** The control services this client knows, and the one the next call tries first. */
  get endpoints(): { all: readonly string[]; preferred: string } {
    return { all: this.transport.endpoints, preferred: this.transport.preferred };
  }

  private async fetch(method: string, path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal, timeoutMs?: number): Promise<Response> {
    try {
      const { response } = await this.transport.request({
        method,
        path,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? null : JSON.stringify(body),
        ...(signal ? { signal } : {}),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      });
      return response;
    } catch (err) {
      if (err instanceof DroverError) throw err;
      // The caller's own abort.
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
      throw new DroverError('DROVER_CONTROL_UNREACHABLE', `control service at ${this.transport.preferred} did not answer ${method} ${path} (${cause})`, {
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

function conditional(options: WriteOptions): Record<string, string> {
  return options.ifMatches ? { [IF_MATCHES_HEADER]: options.ifMatches } : {};
}

/** A long-poll's query (`extra`, then `after`, then `wait_ms`) and deadline (the wait on top of the client's). */
function poll(options: PollOptions, extra: Record<string, string | undefined>, timeoutMs: number): { query: Record<string, string | number | undefined>; signal?: AbortSignal; timeoutMs: number } {
  const waitMs = options.waitMs ?? 25_000;
  return { query: { ...extra, after: options.after, wait_ms: waitMs }, ...(options.signal ? { signal: options.signal } : {}), timeoutMs: timeoutMs + waitMs };
}

/** The answer's body, parsed with the schema the table gives for its status. */
function checked(key: RouteKey, method: string, path: string, status: number, text: string): unknown {
  const answer = (ROUTES[key].answers as Record<number, RouteAnswer>)[status];
  const bad = (why: string, issues: string[] = []) =>
    new DroverError('DROVER_CONTROL_BAD_ANSWER', `the control service's answer to ${key} (${method} ${path}) ${why}${issues.length > 0 ? `: ${issues.join('; ')}` : ''}`, {
      detail: { route: key, method, path, status, ...(issues.length > 0 ? { issues } : {}) },
    });
  if (answer === undefined) throw bad(`has status ${status}, which the route does not declare`);
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw bad('is not JSON');
  }
  if (!answer.schema) return body;
  const parsed = answer.schema.safeParse(body);
  if (parsed.success) return parsed.data;
  throw bad('does not match its schema', parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
}

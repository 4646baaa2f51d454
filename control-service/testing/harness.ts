/**
 * Test helpers: a control service on an in-memory store with a hand-driven clock, driven
 * through `inject()`, and builders of agent reports. For tests only.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { silentLogger, type Logger } from '#common/log.ts';
import type { NodeReport, ObservedContainer, ObservedDataset } from '#common/model.ts';
import { buildApp, type AppOptions } from '../app.ts';
import type { Identity } from '#common/identity.ts';

/**
 * An `identify` for inject(): the caller named by the test-only header `x-test-identity`
 * (`node:n1`, `user:alice`); none: a user. Never part of a served app.
 */
export function headerIdentity(request: { headers: Record<string, string | string[] | undefined> }): Identity {
  const value = request.headers['x-test-identity'];
  const [role, name] = typeof value === 'string' ? value.split(':', 2) : ['user', 'test'];
  return { role: role === 'node' ? 'node' : 'user', name: name ?? 'test' };
}
import { Control, type ControlOptions } from '../control.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { MemoryConfigStore } from '../store/memory-store.ts';
import type { ControlMetrics } from '../metrics.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';

export const uuid = (i: number, prefix = '0000000a') => `${prefix}-0000-4000-8000-${String(i).padStart(12, '0')}`;
export const nodeId = (i: number) => uuid(i, '00000001');
export const datasetId = (i: number) => uuid(i, '0000000d');

/** The one fake clock (common/testing/fake-clock.ts), started at a fixed instant. */
export { FakeClock };
export const HARNESS_EPOCH = 1_800_000_000_000;

export interface Harness {
  app: FastifyInstance;
  control: Control;
  clock: FakeClock;
  store: ConfigStore;
  request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function harness(
  options: { store?: ConfigStore; clock?: FakeClock; nodeTimeoutMs?: number; seed?: number; log?: Logger; replicaReplaceAfterMs?: number; metrics?: ControlMetrics } & Pick<ControlOptions, 'nodeDownGraceMs' | 'migrationDeadlines' | 'failoverMarginMs' | 'vault'> &
    Pick<AppOptions, 'identify'> = {},
): Promise<Harness> {
  const clock = options.clock ?? new FakeClock(HARNESS_EPOCH);
  const store = options.store ?? new MemoryConfigStore();
  const log = options.log ?? silentLogger();
  const control = new Control({
    store,
    log,
    clock,
    nodeTimeoutMs: options.nodeTimeoutMs ?? 15_000,
    seed: options.seed ?? 7,
    ...(options.nodeDownGraceMs === undefined ? {} : { nodeDownGraceMs: options.nodeDownGraceMs }),
    ...(options.failoverMarginMs === undefined ? {} : { failoverMarginMs: options.failoverMarginMs }),
    ...(options.migrationDeadlines === undefined ? {} : { migrationDeadlines: options.migrationDeadlines }),
    ...(options.replicaReplaceAfterMs === undefined ? {} : { replicaReplaceAfterMs: options.replicaReplaceAfterMs }),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
    ...(options.vault === undefined ? {} : { vault: options.vault }),
  });
  await control.start();
  const app = buildApp({ control, log, version: '0.0.0-test', ...(options.identify ? { identify: options.identify } : {}), ...(options.metrics === undefined ? {} : { metrics: options.metrics }) });
  await app.ready();
  return {
    app,
    control,
    clock,
    store,
    request: (method, url, body, headers = {}) =>
      app.inject({ method, url, headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers }, ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }) }),
    close: async () => {
      await app.close();
      await control.stop();
    },
  };
}

export function container(name: string, extra: Partial<ObservedContainer> = {}): ObservedContainer {
  return { name, image: 'redis:7', running: true, health: 'unknown', restart_count: 0, published: [], generation: 0, ...extra };
}

export function observedDataset(id: string, extra: Partial<ObservedDataset> = {}): ObservedDataset {
  return { dataset_id: id, path: `/drover/${id}`, writable: true, maximum_size: null, used_bytes: 0, snapshots: [], ...extra };
}

/** A report from node `i` (address 127.0.0.(10+i)). */
export function report(i: number, extra: Partial<NodeReport> = {}): NodeReport {
  return { uuid: nodeId(i), host: `127.0.0.${10 + i}`, era: `era-${i}`, labels: {}, transfer: {}, datasets: [], containers: [], problems: [], replication: [], ...extra };
}

/**
 * An in-memory ControlPlane for tests (it passes `control.contract.ts`, like the real one).
 *
 * It plays the agents too: a dataset appears in state on its primary at `pathFor(node, id)`.
 * Moves are `instant` (state follows desired at once) or `manual` (a migration record
 * waits in `pending` until the test calls `advance` / `finish` / `fail`).
 */
import { randomUUID } from 'node:crypto';
import { DroverError } from '#common/errors.ts';
import {
  findByName,
  type ControlPlane,
  type CreateDatasetRequest,
  type DatasetConfig,
  type DatasetState,
  type LeaseInfo,
  type MigrationInfo,
  type NodeInfo,
} from '../control.ts';

export interface FakeControlOptions {
  nodes?: NodeInfo[];
  moves?: 'instant' | 'manual';
  /** Where a dataset is mounted on a node; default `/fake/<node>/<dataset_id>`. */
  pathFor?: (nodeUuid: string, datasetId: string) => string;
  /** Called when a dataset lands on a node (created there, or moved there with its data). */
  materialise?: (nodeUuid: string, datasetId: string, fromNode: string | null) => void;
}

export class FakeControl implements ControlPlane {
  readonly datasets: DatasetConfig[] = [];
  readonly leases: LeaseInfo[] = [];
  readonly migrations: MigrationInfo[] = [];
  readonly nodes: NodeInfo[];
  /** Calls per method name; tests read it to prove a fast path made no round trip. */
  readonly calls: Record<string, number> = {};
  /** When true every call fails as if the control service were down. */
  unreachable = false;
  private readonly located = new Map<string, string | null>();
  private readonly options: FakeControlOptions;

  constructor(options: FakeControlOptions = {}) {
    this.options = options;
    this.nodes = options.nodes ?? [];
  }

  async listDatasets(): Promise<DatasetConfig[]> {
    this.enter('listDatasets');
    return structuredClone(this.datasets);
  }

  async createDataset(request: CreateDatasetRequest): Promise<{ dataset: DatasetConfig; created: boolean }> {
    this.enter('createDataset');
    const existing = findByName(this.datasets, request.name);
    if (existing) return { dataset: structuredClone(existing), created: false };
    const dataset: DatasetConfig = {
      dataset_id: randomUUID(),
      primary: request.primary,
      maximum_size: request.maximumSize,
      metadata: { ...request.metadata, name: request.name },
      deleted: false,
    };
    this.datasets.push(dataset);
    this.land(dataset.dataset_id, request.primary, null);
    return { dataset: structuredClone(dataset), created: true };
  }

  async moveDataset(datasetId: string, primary: string): Promise<DatasetConfig> {
    this.enter('moveDataset');
    const dataset = this.mustFind(datasetId);
    if (dataset.primary !== primary) {
      const from = dataset.primary;
      dataset.primary = primary;
      if (this.options.moves === 'manual') {
        this.migrations.push({ id: randomUUID(), dataset_ids: [datasetId], from, to: primary, phase: 'pending', round: 0, bytes_sent: 0, bytes_total: null, error: null });
      } else {
        this.land(datasetId, primary, from);
      }
    }
    return structuredClone(dataset);
  }

  async deleteDataset(datasetId: string): Promise<void> {
    this.enter('deleteDataset');
    const dataset = this.datasets.find((d) => d.dataset_id === datasetId);
    if (dataset) dataset.deleted = true;
  }

  async datasetStates(): Promise<DatasetState[]> {
    this.enter('datasetStates');
    return this.datasets
      .filter((d) => !d.deleted)
      .map((d) => {
        const node = this.located.get(d.dataset_id) ?? null;
        return { dataset_id: d.dataset_id, primary: node, path: node ? this.pathFor(node, d.dataset_id) : null };
      });
  }

  async listLeases(): Promise<LeaseInfo[]> {
    this.enter('listLeases');
    return structuredClone(this.leases);
  }

  /** `expiresSeconds` is recorded as given; the fake's leases do not run down (tests drop them with releaseLease). */
  async acquireLease(datasetId: string, nodeUuid: string, expiresSeconds: number | null = null): Promise<LeaseInfo> {
    this.enter('acquireLease');
    // As Flocker and the real service: a dataset not (yet) configured may be leased.
    const held = this.leases.find((l) => l.dataset_id === datasetId);
    if (held && held.node_uuid !== nodeUuid) {
      throw new DroverError('DROVER_LEASE_HELD', `dataset ${datasetId} is leased to node ${held.node_uuid}`, {
        detail: { dataset_id: datasetId, node_uuid: held.node_uuid },
      });
    }
    if (held) held.expires = expiresSeconds;
    else this.leases.push({ dataset_id: datasetId, node_uuid: nodeUuid, expires: expiresSeconds });
    return { dataset_id: datasetId, node_uuid: nodeUuid, expires: expiresSeconds };
  }

  async releaseLease(datasetId: string): Promise<void> {
    this.enter('releaseLease');
    const i = this.leases.findIndex((l) => l.dataset_id === datasetId);
    if (i >= 0) this.leases.splice(i, 1);
  }

  async listNodes(): Promise<NodeInfo[]> {
    this.enter('listNodes');
    return structuredClone(this.nodes);
  }

  async listMigrations(): Promise<MigrationInfo[]> {
    this.enter('listMigrations');
    return structuredClone(this.migrations);
  }

  // ------------------------------------------------------------ test controls (manual moves)

  /** The newest migration of a dataset. */
  migrationOf(datasetId: string): MigrationInfo | undefined {
    return this.migrations.filter((m) => m.dataset_ids.includes(datasetId)).at(-1);
  }

  advance(migrationId: string, fields: Partial<MigrationInfo>): void {
    Object.assign(this.mustMigration(migrationId), fields);
  }

  finish(migrationId: string): void {
    const m = this.mustMigration(migrationId);
    m.phase = 'done';
    for (const id of m.dataset_ids) this.land(id, m.to, m.from);
  }

  fail(migrationId: string, error: string): void {
    const m = this.mustMigration(migrationId);
    Object.assign(m, { phase: 'failed', error });
    for (const id of m.dataset_ids) this.mustFind(id).primary = m.from;
  }

  private land(datasetId: string, node: string, from: string | null): void {
    this.options.materialise?.(node, datasetId, from);
    this.located.set(datasetId, node);
  }

  private pathFor(node: string, datasetId: string): string {
    return this.options.pathFor?.(node, datasetId) ?? `/fake/${node}/${datasetId}`;
  }

  private enter(method: string): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
    if (this.unreachable) throw new DroverError('DROVER_CONTROL_UNREACHABLE', 'control service did not answer (fake: unreachable)', { retryable: true });
  }

  private mustFind(datasetId: string): DatasetConfig {
    const dataset = this.datasets.find((d) => d.dataset_id === datasetId);
    if (!dataset) throw new DroverError('DROVER_CONTROL_NOT_FOUND', `no dataset ${datasetId}`);
    return dataset;
  }

  private mustMigration(id: string): MigrationInfo {
    const m = this.migrations.find((x) => x.id === id);
    if (!m) throw new Error(`fake: no migration ${id}`);
    return m;
  }
}

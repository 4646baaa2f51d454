/**
 * What the volume plugin needs from the control service, as one small interface
 * (docs/DESIGN.md §13). `control-http.ts` speaks Flocker's v1 API; `testing/fake-control.ts`
 * is an in-memory stand-in for unit tests. Both pass `testing/control.contract.ts`.
 *
 * Field names are Flocker's (snake_case), as the API returns them.
 */

/** A dataset in the desired configuration. */
export interface DatasetConfig {
  dataset_id: string;
  /** Node uuid that should hold the dataset writable. */
  primary: string;
  /** Bytes; null means no limit. */
  maximum_size: number | null;
  metadata: Record<string, string>;
  deleted: boolean;
}

/** Where a dataset is, as the agents observed it. */
export interface DatasetState {
  dataset_id: string;
  /** The node that has it writable; null when no node does (yet). */
  primary: string | null;
  /** Mountpoint on `primary`; null when not mounted. */
  path: string | null;
}

export interface LeaseInfo {
  dataset_id: string;
  node_uuid: string;
  /** Seconds left, null when it never expires (Flocker's wire form). */
  expires: number | null;
}

export interface NodeInfo {
  uuid: string;
  host: string;
}

/** A move of datasets with their data (common/model.ts `Migration`, the fields the plugin reads). */
export interface MigrationInfo {
  id: string;
  dataset_ids: string[];
  from: string;
  to: string;
  phase: string;
  round: number;
  bytes_sent: number;
  bytes_total: number | null;
  error: string | null;
}

export interface CreateDatasetRequest {
  /** The Docker volume name, kept as metadata `name`; unique among live datasets. */
  name: string;
  primary: string;
  maximumSize: number | null;
  /** Extra metadata besides `name`. */
  metadata?: Record<string, string>;
}

export interface ControlPlane {
  /** The desired configuration's datasets, deleted ones included. */
  listDatasets(): Promise<DatasetConfig[]>;
  /**
   * Creates a dataset named `name` unless a live one with that name exists anywhere in the
   * cluster, in which case that one is returned with `created: false`. Conditional on the
   * configuration tag, so two nodes creating the same name at once make one dataset.
   */
  createDataset(request: CreateDatasetRequest): Promise<{ dataset: DatasetConfig; created: boolean }>;
  /** Asks for the dataset to move (with its data) to `primary`. Idempotent. */
  moveDataset(datasetId: string, primary: string): Promise<DatasetConfig>;
  /** Soft delete. Idempotent: an unknown or already deleted dataset is a success. */
  deleteDataset(datasetId: string): Promise<void>;
  datasetStates(): Promise<DatasetState[]>;
  listLeases(): Promise<LeaseInfo[]>;
  /**
   * Takes (or renews) a lease for `nodeUuid` that expires `expiresSeconds` from now (null,
   * the default: never). Throws DROVER_LEASE_HELD (detail.node_uuid = the holder) when
   * another node holds it.
   */
  acquireLease(datasetId: string, nodeUuid: string, expiresSeconds?: number | null): Promise<LeaseInfo>;
  /** Idempotent: no lease is a success. */
  releaseLease(datasetId: string): Promise<void>;
  listNodes(): Promise<NodeInfo[]>;
  /** Migrations the control service knows; [] when it keeps none. */
  listMigrations(): Promise<MigrationInfo[]>;
}

/** The live dataset that backs volume `name`, if any. */
export function findByName(datasets: readonly DatasetConfig[], name: string): DatasetConfig | undefined {
  return datasets.find((d) => !d.deleted && d.metadata.name === name);
}

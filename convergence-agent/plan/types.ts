/**
 * The planner's vocabulary: what the agent observed on its node, the changes it may make,
 * and what a plan returns. Everything here is plain data (docs/DESIGN.md §4).
 */
import type { Migration } from '#common/model.ts';
import type { ServiceSubnet } from '#common/service-subnet.ts';
import type { DivergedCopyInfo, ZfsDatasetInfo, ZfsSnapshotInfo } from '../zfs/types.ts';

export type Health = 'unknown' | 'starting' | 'healthy' | 'unhealthy';

/** A container drover created on this node, as discovered (docker + the agent's memory). */
export interface LocalContainer {
  id: string;
  /** Docker name without the leading slash: `drover-<app>`. */
  name: string;
  /** From the `drover.app` label. */
  app: string;
  image: string;
  /** From the `drover.generation` label. */
  generation: number;
  /** From the `drover.config-hash` label. */
  configHash: string;
  /** Docker's State.Status: created, running, paused, restarting, removing, exited, dead. */
  status: string;
  running: boolean;
  exitCode: number | null;
  oomKilled: boolean;
  /** Milliseconds since the epoch; null when never started / never finished. */
  startedAt: number | null;
  finishedAt: number | null;
  /** Host paths bind-mounted into the container. */
  mountSources: string[];
  published: { internal: number; host: string; host_port: number; protocol?: 'udp' }[];
  /** The container's address on its bridge network; null when it has none. */
  ipAddress: string | null;
  /** From the health monitor; `unknown` when the application has no health check. */
  health: Health;
  /** Restarts the agent made of this container (drover's restart policy, not Docker's). */
  restartCount: number;
  /** Restarts since the container last ran long enough to count as stable. */
  consecutiveRestarts: number;
  /**
   * A gated container (a migration's warm start, gate/README.md): `closed` while its first
   * process waits and the application has not run; `missing` when its gate directory is gone
   * (it can never open). null for an ordinary container.
   */
  gate: { id: string; state: 'closed' | 'open' | 'missing'; openedAt: number | null } | null;
}

/**
 * What discovery saw. `null` means unknown (the listing failed): unknown is not empty,
 * so the planner never removes or destroys anything on the strength of a null.
 */
export interface LocalObserved {
  datasets: ZfsDatasetInfo[] | null;
  /** dataset_id → its snapshots (for the report and the migration steps); null when unknown. */
  snapshots: Record<string, ZfsSnapshotInfo[]> | null;
  containers: LocalContainer[] | null;
  /** This agent's migration jobs (migration/jobs.ts); absent where no jobs are wired (tests). */
  migrationJobs?: MigrationJobState[];
  /** Copies kept under `<pool>/drover-diverged/` (docs/DESIGN.md §18); null: not listed this pass; absent: this store keeps none. */
  diverged?: DivergedCopyInfo[] | null;
}

/** A source migration job of this agent, as the planner sees it (plain data). */
export interface MigrationJobState {
  migrationId: string;
  /** How far the job got: `cutover` once it posted cutover (A may be stopped, D read-only). */
  stage: 'starting' | 'pre-copy' | 'cutover' | 'handed-off';
  /** null while it runs; `aborted`: `failed` accepted; `stopped`: ended without a verdict. */
  outcome: 'handed-off' | 'aborted' | 'failed' | 'stopped' | null;
  /** Milliseconds since the epoch. */
  endedAt: number | null;
  error: string | null;
}

/** Everything docker needs to create one container; built by `containerSpec()`. */
export interface ContainerSpec {
  name: string;
  app: string;
  image: string;
  command: string[] | null;
  entrypoint: string[] | null;
  /** `KEY=value`, sorted. */
  env: string[];
  labels: Record<string, string>;
  /** Internal TCP ports, each published on `hostIp` with a host port docker picks. */
  ports: number[];
  /** Internal UDP ports, published likewise; absent when none. */
  udpPorts?: number[];
  /** `name:address` for Docker's ExtraHosts: the peers it reaches by name (docs/DESIGN.md §21); absent when none. */
  extraHosts?: string[];
  hostIp: string;
  binds: { source: string; target: string; readOnly?: true }[];
  memoryBytes: number | null;
  cpuShares: number | null;
  /** Docker's MemorySwappiness (0–100). */
  swappiness: number | null;
  /** Compose's container keys (container-spec.ts); absent when the application sets none. */
  options?: ContainerOptions;
  /** Files the agent writes on the node and mounts read-only (docs/DESIGN.md §22); absent: none. */
  files?: MountedFile[];
  /** Environment variables whose values are secrets: name → secret id, fetched when the container is created. */
  secretEnv?: Record<string, string>;
  configHash: string;
}

/** A file (or directory) that travels with the application, as this node writes and mounts it. */
export interface MountedFile {
  /** Host path: under the agent's files directory, or its tmpfs for a secret. */
  source: string;
  target: string;
  secret: boolean;
  /** A file's content id; or `tree` (relative path → content id) for a directory. */
  blob?: string;
  tree?: Record<string, string>;
  /** Permission bits; 0444 unless the application said otherwise. */
  mode: number;
  uid?: number;
  gid?: number;
}

/** How Docker runs the container, from the application's Compose keys; each maps to one create setting. */
export interface ContainerOptions {
  hostname?: string;
  user?: string;
  workingDir?: string;
  stopSignal?: string;
  /** Seconds; the agent's stops use it instead of its own default. */
  stopGraceSeconds?: number;
  capAdd?: string[];
  capDrop?: string[];
  readOnly?: boolean;
  /** Container path → tmpfs options. */
  tmpfs?: Record<string, string>;
  init?: boolean;
  shmSizeBytes?: number;
  ulimits?: { name: string; soft: number; hard: number }[];
  logging?: { driver: string; options: Record<string, string> };
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** The application's own `host:address` lines; the peers' (spec.extraHosts) come first. */
  extraHosts?: string[];
  sysctls?: Record<string, string>;
  tty?: boolean;
  openStdin?: boolean;
  securityOpt?: string[];
  domainname?: string;
  groupAdd?: string[];
  oomScoreAdj?: number;
  cpusetCpus?: string;
  ipcMode?: string;
  memoryReservationBytes?: number;
  memorySwapBytes?: number;
  pidsLimit?: number;
  /** Read-only binds of the node's own system files (time zone, CA certificates). */
  hostBinds?: { source: string; target: string }[];
}

/** The changes an agent makes; the executor is one exhaustive switch over `kind`. */
export type Change =
  | { kind: 'create-dataset'; datasetId: string; maximumSize: number | null }
  /** `mount`: also mount it once writable (one step: a received replica becomes usable in one pass). */
  /**
   * `rollbackTo`: a promoted replica (docs/DESIGN.md §18) is first rolled back to its newest
   * received snapshot (`zfs rollback` without -r: refused unless it is the newest).
   */
  | { kind: 'set-dataset-readonly'; datasetId: string; readonly: boolean; mount?: true; rollbackTo?: string }
  | { kind: 'set-dataset-size'; datasetId: string; maximumSize: number | null }
  | { kind: 'mount-dataset'; datasetId: string }
  /** A read-only replica on a migration's target, unmounted so that a gated container can bind its mountpoint. */
  | { kind: 'unmount-dataset'; datasetId: string }
  | { kind: 'destroy-dataset'; datasetId: string }
  /** After a failover took the dataset elsewhere: keep this node's copy under `<pool>/drover-diverged/<id>-g<generation>` (docs/DESIGN.md §18). */
  /** `promoted`: the snapshot the failover restarted from; a copy with nothing written after it rejoins as a replica instead. */
  | { kind: 'set-aside-diverged'; datasetId: string; generation: number; promoted?: string }
  /** A copy that rejoined in place after a failover is an ordinary replica again: its `drover:rejoined` mark goes (docs/DESIGN.md §18). */
  | { kind: 'clear-rejoined-mark'; datasetId: string }
  /**
   * `after`: subjects (`dataset:<id>`) whose change planned in the same pass must apply
   * first (a dataset being made writable and mounted); if one fails, this one waits.
   */
  | { kind: 'start-container'; spec: ContainerSpec; after?: string[] }
  /**
   * A migration's warm start on its target: the container created and started before
   * handoff, its first process waiting behind gate `gateId` (the migration's id).
   */
  | { kind: 'prestart-container'; spec: ContainerSpec; gateId: string }
  /** Lets a gated container's application run; `after` as for start-container. */
  | { kind: 'open-container-gate'; name: string; containerId: string; gateId: string; after?: string[] }
  | { kind: 'stop-container'; name: string; containerId: string; reason: string }
  /** `gateId`: the container was gated; its gate directory goes with it. */
  | { kind: 'remove-container'; name: string; containerId: string; gateId?: string }
  | {
      kind: 'restart-container';
      name: string;
      containerId: string;
      reason: 'crashed' | 'exited' | 'unhealthy' | 'never-started';
      /** The value of consecutiveRestarts after this restart (the executor records it). */
      consecutiveRestarts: number;
    }
  /** Starts (or keeps) the source's background job for a migration (migration/source-job.ts). */
  | { kind: 'run-migration'; migration: Migration }
  /** The target's steps after handoff. */
  | { kind: 'post-migration-update'; migrationId: string; generation: number; phase: 'release' | 'done' };

export type ChangeKind = Change['kind'];

export interface Blocked {
  /** `dataset:<id>`, `container:<name>`, `migration:<id>`. */
  subject: string;
  reason: string;
}

export interface PlanResult {
  changes: Change[];
  blocked: Blocked[];
  /** When the planner wants to look again even if nothing else happens (a backoff expiring). */
  recheckAfterMs: number | null;
  /**
   * Migrations handed off here that wait only for their container's first passing health
   * check: the loop posts `release` as soon as the health monitor reports it, without a
   * pass's discovery first (every ms before release is downtime).
   */
  releaseWhenHealthy?: ReleaseCandidate[];
  /**
   * App name → the update hold whose spec its container here runs (plan/containers.ts): the
   * report says so, and the control service lifts the hold once that container is ready.
   */
  updates?: ReadonlyMap<string, string>;
}

export interface ReleaseCandidate {
  migrationId: string;
  generation: number;
  containerId: string;
}

/** Planner inputs that are not desired or observed state. */
export interface PlanContext {
  nodeUuid: string;
  /** The node's address: containers publish their ports here. */
  address: string;
  /** Where this node's proxy serves the applications reached by name (docs/DESIGN.md §21); absent: no names. */
  serviceSubnet?: ServiceSubnet;
  /** Milliseconds since the epoch, read by the caller. */
  now: number;
  /** This node can start a migration's container before handoff, behind a gate (gate/gates.ts detect). */
  warmStart?: boolean;
  /** Where the agent writes files that travel with applications, and its tmpfs for secrets (docs/DESIGN.md §22). */
  filesRoot?: string;
  secretsRoot?: string;
  /**
   * The node is fenced or not yet confirmed by the control service (fence.ts, docs/DESIGN.md
   * §18): nothing failover-enabled starts and none of their datasets becomes writable.
   */
  fenced?: boolean;
}

/** The subject of a change: one step per subject per pass. */
export function changeSubject(change: Change): string {
  switch (change.kind) {
    case 'create-dataset':
    case 'set-dataset-readonly':
    case 'set-dataset-size':
    case 'mount-dataset':
    case 'unmount-dataset':
    case 'destroy-dataset':
    case 'set-aside-diverged':
    case 'clear-rejoined-mark':
      return `dataset:${change.datasetId}`;
    case 'start-container':
    case 'prestart-container':
      return `container:${change.spec.name}`;
    case 'open-container-gate':
    case 'stop-container':
    case 'remove-container':
    case 'restart-container':
      return `container:${change.name}`;
    case 'run-migration':
      return `migration:${change.migration.id}`;
    case 'post-migration-update':
      return `migration:${change.migrationId}`;
  }
}

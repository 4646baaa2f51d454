/**
 * The control service's HTTP API as zod schemas: request bodies and answers of Flocker's v1
 * endpoints (control-service/README.md "API") and drover's `/v1/drover/` additions. The server
 * validates requests with these; the route table (api-routes.ts) names them per route, and
 * the server, the client and the OpenAPI document are built from that table. The agent
 * channel's shapes are in channel.ts.
 */
import { z } from 'zod';
import { Application, Dataset, DatasetMetadata, HostKeyAcceptance, HostKeyFingerprint, Ipv4, Labels, Migration, ObservedContainer, ReplicaState, ReplicaStatus, ReplicationPolicy, Uuid } from './model.ts';

/** Response header with the tag of the configuration a read saw. */
export const TAG_HEADER = 'x-configuration-tag';
/** Request header: apply the write only if the configuration's tag is still this one (else 412). */
export const IF_MATCHES_HEADER = 'x-if-configuration-matches';

/** Every error answer: Flocker's `{description, errors?}`, plus drover's stable `code`. */
export const ErrorBody = z.object({
  description: z.string(),
  errors: z.array(z.string()).optional(),
  code: z.string().optional(),
  detail: z.record(z.string(), z.unknown()).optional(),
  incident: z.string().optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

export const VersionAnswer = z.object({ flocker: z.string(), drover: z.string() });

// ------------------------------------------------------------------ datasets

export const CreateDatasetBody = z
  .object({
    primary: Uuid,
    dataset_id: Uuid.optional(),
    maximum_size: Dataset.shape.maximum_size.optional(),
    metadata: DatasetMetadata.optional(),
    /** drover's extension: continuous replication to standby nodes (docs/DESIGN.md §17). */
    replication: ReplicationPolicy.nullable().optional(),
  })
  .strict();
export type CreateDatasetBody = z.infer<typeof CreateDatasetBody>;

export const MoveDatasetBody = z.object({ primary: Uuid }).strict();

/** A dataset as observed: primary and path only when some node has it writable. */
export const DatasetState = z.object({
  dataset_id: Uuid,
  primary: Uuid.optional(),
  path: z.string().optional(),
  maximum_size: z.number().int().nullable().optional(),
});
export type DatasetState = z.infer<typeof DatasetState>;

/**
 * A dataset with what every node holds of it (`GET /v1/drover/datasets`, the dashboard's
 * view, docs/DESIGN.md §26): its configuration, and per node that reported a copy whether it
 * is writable, the bytes it uses and its snapshots (how many, the newest).
 */
export const DatasetDetail = z.object({
  dataset_id: Uuid,
  /** `metadata.name`, when it has one. */
  name: z.string().nullable(),
  primary: Uuid,
  maximum_size: z.number().int().nullable(),
  deleted: z.boolean(),
  replicas: z.array(Uuid),
  /** The applications that mount it. */
  applications: z.array(z.string()),
  copies: z.array(
    z.object({
      node_uuid: Uuid,
      writable: z.boolean(),
      used_bytes: z.number().int().min(0),
      snapshots: z.number().int().min(0),
      newest_snapshot: z.string().nullable(),
    }),
  ),
});
export type DatasetDetail = z.infer<typeof DatasetDetail>;

/** What a dataset move answers: the dataset as stored now, and the migration carrying it. */
export const DatasetMoveAnswer = Dataset.extend({ migration: Migration.nullable() });

// ------------------------------------------------------------------ containers

/** Flocker's container body; `node_uuid` may be left out for the scheduler to place it. */
export const CreateContainerBody = Application;
export const MoveContainerBody = z.object({ node_uuid: Uuid }).strict();
export const ContainerMoveAnswer = Application.extend({ migration: Migration.nullable() });

/**
 * known: the node holds its lease (reported within the lease TTL); unknown: the lease lapsed,
 * or not heard from since a restart; down: silent for the grace beyond the TTL too.
 */
export const NodeStateName = z.enum(['known', 'unknown', 'down']);

export const ContainerState = Application.partial()
  .extend({
    name: z.string(),
    node_uuid: Uuid,
    image: z.string(),
    running: z.boolean(),
    health: ObservedContainer.shape.health,
    restart_count: z.number().int(),
    published: ObservedContainer.shape.published,
    node_state: NodeStateName,
  });
export type ContainerState = z.infer<typeof ContainerState>;

// ------------------------------------------------------------------ nodes

export const NodeStateAnswer = z.object({
  uuid: Uuid,
  host: Ipv4,
  state: NodeStateName,
  era: z.string().nullable(),
  labels: Labels,
  /** Milliseconds since the epoch; null when it has not reported since the control service started. */
  last_seen: z.number().nullable(),
  /** Milliseconds since its last report (null: not heard from since the control service started). */
  silent_ms: z.number().nullable().optional(),
  problems: z.array(z.unknown()).optional(),
  /** The operator's cordon (`drover node cordon|drain`): nothing new is placed there. Absent: false. */
  cordoned: z.boolean().optional(),
  /** Being drained: its applications move off. */
  draining: z.boolean().optional(),
  /** Applications still on it, and instances (`web.2`) until they leave (while cordoned or draining). */
  applications_left: z.number().int().min(0).optional(),
  /** The last ssh host key the operator accepted on purpose (`drover node trust-host-key`). */
  host_key_accepted: HostKeyAcceptance.optional(),
});
export type NodeStateAnswer = z.infer<typeof NodeStateAnswer>;

export const EraAnswer = z.object({ uuid: Uuid });

// ------------------------------------------------------------------ leases

/** Flocker's wire form of a lease: `expires` is seconds from now (null: never). */
export const LeaseBody = z
  .object({ dataset_id: Uuid, node_uuid: Uuid, expires: z.number().min(0).max(10 * 365 * 86400).nullable() })
  .strict();
export type LeaseBody = z.infer<typeof LeaseBody>;
export const LeaseAnswer = z.object({ dataset_id: Uuid, node_uuid: Uuid, expires: z.number().nullable() });
export type LeaseAnswer = z.infer<typeof LeaseAnswer>;

// ------------------------------------------------------------------ drover additions

const DeployFileBody = z.object({ file: z.string().min(1).max(256), text: z.string().max(4 * 1024 * 1024) }).strict();

export const DeployBody = z
  .object({
    project: z.string().min(1).max(128).regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, "_" and "-"'),
    compose: DeployFileBody,
    topology: DeployFileBody,
    dry_run: z.boolean().default(false),
    /**
     * The contents of the files the project ships (configs, secrets, read-only project binds;
     * docs/DESIGN.md §22): SHA-256 (hex) → content (base64), each at most 1 MiB. The Compose
     * file's `x-drover-cli.files` names which path holds which. Never returned by any read.
     */
    files: z
      .record(z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex'), z.string().max(1_400_000, 'a file is at most 1 MiB').regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64'))
      .default({}),
  })
  .strict();
export type DeployBody = z.input<typeof DeployBody>;

export const DeployAnswer = z.object({
  project: z.string(),
  dry_run: z.boolean(),
  diff: z.object({ added: z.array(z.string()), changed: z.array(z.string()), removed: z.array(z.string()), unchanged: z.array(z.string()) }),
  /** Moves the deploy started (an application the topology now names on another node). */
  migrations: z.array(Migration),
  /** Applications the scheduler could not place, and why. */
  unschedulable: z.record(z.string(), z.string()),
  /** The configuration tag after the deploy (before it, for a dry run). */
  tag: z.string(),
});
export type DeployAnswer = z.infer<typeof DeployAnswer>;

export const ApplicationStatus = z.object({
  name: z.string(),
  project: z.string().nullable(),
  image: z.string(),
  node_uuid: Uuid.nullable(),
  /** running/stopped: as its node reports it; missing: its node is up but has no such container. */
  state: z.enum(['running', 'stopped', 'missing', 'unknown', 'unplaced']),
  health: ObservedContainer.shape.health.nullable(),
  unschedulable_reason: z.string().nullable(),
  migration: Migration.nullable(),
  /** Standby copies of its datasets, one per replica node (the worst of its datasets there). */
  replicas: z.array(z.object({ node: Uuid, lag_seconds: z.number().nullable(), state: ReplicaState })).default([]),
  /** Its node's state (null: unplaced) and how long that node has been silent, in milliseconds. */
  node_state: NodeStateName.nullable().optional(),
  node_silent_ms: z.number().nullable().optional(),
  /** The newest error about it from its node or its move's target, e.g. "image drover/x:1 not found on 127.0.0.12". */
  last_error: z.string().nullable().optional(),
  /** Why its container is not started yet, while it waits for a dependency (`depends_on`, docs/DESIGN.md §22). */
  waiting: z.string().nullable().optional(),
  /** An application with several instances (docs/DESIGN.md §30): each one, where it runs and how it is. */
  instances: z
    .array(
      z.object({
        id: z.number().int(),
        node_uuid: Uuid,
        state: z.enum(['running', 'stopped', 'missing', 'unknown']),
        health: ObservedContainer.shape.health.nullable(),
        revision: z.number().int(),
        draining: z.boolean(),
      }),
    )
    .optional(),
  /** Its rolling update, while one runs or stopped short (paused, rolled back). */
  rollout: z.object({ state: z.string(), reason: z.string().optional() }).optional(),
});
export type ApplicationStatus = z.infer<typeof ApplicationStatus>;

export const MoveApplicationBody = z
  .object({
    node_uuid: Uuid,
    /**
     * When the application's node is silent (unknown or down): promote the target's replica
     * instead of a live move (docs/DESIGN.md §19). Refused when the source reports.
     */
    force: z.boolean().optional(),
    /** The data window the operator accepts losing, e.g. `5m12s`: needed when the newest copy is older than the threshold. */
    accept_data_loss: z.string().min(1).max(32).optional(),
    /** The threshold, in seconds (default 60). */
    data_loss_threshold_seconds: z.number().min(0).max(30 * 86_400).optional(),
  })
  .strict();
export type MoveApplicationBody = z.input<typeof MoveApplicationBody>;
/**
 * `PUT /v1/drover/applications/<name>/instances` (`drover scale`, docs/DESIGN.md §30): how many
 * instances an application without a dataset runs from now on.
 */
export const ScaleApplicationBody = z.object({ instances: z.number().int().min(0).max(256) }).strict();
export type ScaleApplicationBody = z.input<typeof ScaleApplicationBody>;
/** `POST /v1/drover/migrations`: the same move, named the way the CLI asks for it. */
export const StartMigrationBody = z.object({ application: z.string().min(1).max(63), to: Uuid }).strict();
export const MoveApplicationAnswer = z.object({ application: Application, migration: Migration.nullable() });
export type MoveApplicationAnswer = z.infer<typeof MoveApplicationAnswer>;

/** What `POST /v1/drover/nodes/<uuid>/trust-host-key` takes: the fingerprint the operator checked on the node, or none (the one it reports). */
export const TrustHostKeyBody = z.object({ fingerprint: HostKeyFingerprint.optional() }).strict();
export type TrustHostKeyBody = z.infer<typeof TrustHostKeyBody>;

/** What it answers: the node and the key it now pins. */
export const TrustHostKeyAnswer = z.object({ uuid: Uuid, host: Ipv4, host_key_accepted: HostKeyAcceptance });
export type TrustHostKeyAnswer = z.infer<typeof TrustHostKeyAnswer>;

/** What `POST /v1/drover/nodes/<uuid>/cordon|uncordon|drain` and `GET …/scheduling` answer. */
export const NodeSchedulingAnswer = z.object({
  uuid: Uuid,
  host: Ipv4,
  cordoned: z.boolean(),
  draining: z.boolean(),
  /** When it was cordoned or drained (ms since the epoch); null: schedulable. */
  since: z.number().nullable(),
  /** Applications still on it, and instances placed there (`web.2`) until they leave: a drained instance is removed once its replacement runs elsewhere and the proxies stopped sending to it. */
  applications: z.array(z.string()),
  /** Unfinished moves off it (a drain's, or the operator's). */
  migrations: z.array(Migration),
  /** Moves this call started. */
  started: z.array(Migration),
  /** Applications on it that cannot move now, and why (no node fits, the node is silent, their move failed). */
  cannot_move: z.array(z.object({ application: z.string(), reason: z.string() })),
});
export type NodeSchedulingAnswer = z.infer<typeof NodeSchedulingAnswer>;

export const RouteAcksAnswer = z.object({
  version: z.number().int(),
  acked: z.boolean(),
  proxies: z.array(z.object({ node_uuid: Uuid, acked_version: z.number().int(), live: z.boolean() })),
  waiting_for: z.array(Uuid),
});
export type RouteAcksAnswer = z.infer<typeof RouteAcksAnswer>;

// ------------------------------------------------------------------ replication (docs/DESIGN.md §17)

/** `PUT /v1/drover/datasets/<id>/replication` and `…/applications/<name>/replication`: a policy, or null to stop. */
export const ReplicationBody = ReplicationPolicy.nullable();

/** One replica of a dataset as `GET /v1/drover/replication` shows it. */
export const ReplicaAnswer = z.object({
  node: Uuid,
  /** The node's `name` label, when it has one. */
  node_name: z.string().optional(),
  /** 'seeding' with lag null: chosen, and the primary has not reported it yet. */
  state: ReplicaState,
  lag_seconds: z.number().min(0).nullable(),
  newest_snapshot: z.string().nullable(),
  bytes_sent_total: z.number().int().min(0),
  last_success_at: z.number().nullable(),
  last_error: ReplicaStatus.shape.last_error,
  /** Why this replica is a problem (lag over 3 × the interval, diverged, error); null: fine. */
  problem: z.string().nullable(),
});
export type ReplicaAnswer = z.infer<typeof ReplicaAnswer>;

/**
 * A copy of the dataset a node kept aside — after a failover took the dataset elsewhere
 * (docs/DESIGN.md §18), or when a move to a diverged replica set it aside (§17) — as that node reports it.
 */
export const KeptCopyAnswer = z.object({
  node: Uuid,
  node_name: z.string().optional(),
  /** Full zfs name: `<pool>/drover-diverged/<dataset_id>-g<generation>`. Never destroyed by drover. */
  name: z.string(),
  generation: z.number().int().min(0),
  used_bytes: z.number().int().min(0),
});
export type KeptCopyAnswer = z.infer<typeof KeptCopyAnswer>;

export const ReplicationAnswer = z.object({
  dataset_id: Uuid,
  /** The application that mounts it, if any. */
  application: z.string().nullable(),
  primary: Uuid,
  policy: ReplicationPolicy,
  replicas: z.array(ReplicaAnswer),
  /** Why fewer replicas than asked for are placed; null when all are. */
  problem: z.string().nullable().default(null),
  /** Copies nodes kept aside (after a failover, or a move to a diverged replica), for an operator to inspect or delete. */
  kept: z.array(KeptCopyAnswer).default([]),
});
export type ReplicationAnswer = z.infer<typeof ReplicationAnswer>;

/** One SSE event of `GET /v1/drover/events` (`event:` is the type, `data:` the JSON). */
export const EventTypes = ['configuration', 'node', 'migration', 'replication'] as const;

/**
 * The `replication` event: a replica's state changed, or it became or stopped being a
 * problem. `problem` is the reason, or null.
 */
export const ReplicationEvent = z.object({
  dataset_id: Uuid,
  replica: Uuid,
  state: ReplicaState,
  lag_seconds: z.number().min(0).nullable(),
  problem: z.string().nullable(),
  /**
   * Set on the event that a copy of the dataset on `replica` was newly kept aside (state
   * `diverged`): its full zfs name, `<pool>/drover-diverged/<dataset_id>-g<generation>`.
   */
  kept: z.string().optional(),
});
export type ReplicationEvent = z.infer<typeof ReplicationEvent>;

/**
 * `POST /v1/drover/secrets`: a secret for an application written through the API (its
 * `secret_environment` or a `files` entry of kind `secret` names the id). Stored sealed; never
 * answered by a read (docs/DESIGN.md §22).
 */
export const CreateSecretBody = z.object({ content_base64: z.string().min(1).max(1_400_000).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64') }).strict();
export const CreateSecretAnswer = z.object({ id: z.string().regex(/^[0-9a-f]{64}$/) }).strict();

/**
 * drover's model (docs/DESIGN.md §3): zod schemas of the desired configuration and of observed
 * state. Field names follow Flocker's v1 REST API (snake_case) so that the API needs no
 * translation layer and Flocker's own clients read drover's answers unchanged.
 *
 * Every schema is `.strict()`: an unknown key is an error that names the key, never ignored.
 */
import { z } from 'zod';
import { MIGRATION_PHASES } from './migration-protocol.ts';
import { DEFAULT_RETENTION_GRID, parseRetentionGrid } from './retention-grid.ts';

export const Uuid = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a lower-case UUID');
export type Uuid = z.infer<typeof Uuid>;

export const Ipv4 = z.string().regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/, 'must be an IPv4 address');

/** Application and service names: Docker container-name safe, and safe in a zfs property. */
export const AppName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'must start with a letter or digit and hold only letters, digits, "_", "." or "-"');

export const Port = z.number().int().min(1).max(65535);

/** Labels on nodes and applications: short keys, short values. */
export const Labels = z.record(
  z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.\/-]{0,62}$/, 'label keys hold letters, digits, "_", ".", "/" or "-"'),
  z.string().max(256),
);

// ---------------------------------------------------------------- desired configuration

/** An OpenSSH host-key fingerprint as `ssh-keygen -lf` prints it (SHA256, base64 without padding). */
export const HostKeyFingerprint = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'must be an OpenSSH SHA256 fingerprint');

/**
 * The operator's acceptance of a node's new ssh host key (`drover node trust-host-key`,
 * docs/DESIGN.md §23): the key accepted, the one it replaced, who (the user certificate's
 * name) and when (ms since the epoch). Kept across the agent's reports.
 */
export const HostKeyAcceptance = z.object({ fingerprint: HostKeyFingerprint, previous: HostKeyFingerprint, by: z.string().max(64), at: z.number() }).strict();
export type HostKeyAcceptance = z.infer<typeof HostKeyAcceptance>;

export const NodeTransfer = z
  .object({
    /** OpenSSH endpoint used by the ssh transport; the host key is pinned by its fingerprint. */
    ssh: z
      .object({
        host: Ipv4,
        port: Port,
        user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/),
        host_key_fingerprint: HostKeyFingerprint,
        /** The node's pool: a sender runs `zfs receive` into `<pool>/drover/<dataset_id>` there. */
        pool: z.string().regex(/^[A-Za-z][A-Za-z0-9_.:-]{0,200}$/).optional(),
        /** Where the node mounts drover datasets; absent: ZFS's default (inherited) mountpoints. */
        mount_root: z.string().regex(/^\/[A-Za-z0-9_./:-]*$/).optional(),
      })
      .strict()
      .optional(),
    /** The agent's own mutual-TLS receive endpoint. */
    tls: z.object({ host: Ipv4, port: Port }).strict().optional(),
  })
  .strict();
export type NodeTransfer = z.infer<typeof NodeTransfer>;

export const Node = z
  .object({
    uuid: Uuid,
    host: Ipv4,
    labels: Labels.default({}),
    transfer: NodeTransfer.default({}),
    /**
     * Set by the operator (`drover node cordon|drain`): nothing new is placed there (no
     * application, no replica); `drain` also moves every application off, and drops its
     * replicas. `since`: ms since the epoch. Absent: schedulable. Kept across the agent's reports.
     */
    cordon: z.object({ since: z.number(), drain: z.boolean() }).strict().optional(),
    /**
     * Recorded by the control service when the node first reported with its node
     * certificate (docs/DESIGN.md §23), never from a report: the certificate's CN, which is
     * also the node's transfer TLS identity. A report for this uuid under another node
     * certificate is refused. Absent: the node joined without one (plain loopback).
     */
    identity: z.object({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/) }).strict().optional(),
    /** The last host key the operator accepted on purpose (docs/DESIGN.md §23); absent: the one it joined with. */
    host_key_accepted: HostKeyAcceptance.optional(),
  })
  .strict();
export type Node = z.infer<typeof Node>;

export const DatasetMetadata = z.record(z.string().max(256), z.string().max(256)).refine((m) => Object.keys(m).length <= 16, {
  message: 'at most 16 metadata entries',
});

/** A retention grid of drover's replication snapshots in zrepl's notation (common/retention-grid.ts); every bad term is named. */
export const RetentionGridText = z
  .string()
  .max(512)
  .superRefine((text, ctx) => {
    const parsed = parseRetentionGrid(text);
    if (!parsed.ok) for (const message of parsed.errors) ctx.addIssue({ code: 'custom', message });
  });

/**
 * Continuous replication of a dataset (docs/DESIGN.md §17): `replicas` standby copies on other
 * nodes, a snapshot sent every `interval_seconds`, and how many of drover's replication
 * snapshots each side keeps. Changing it changes nothing but replication (no restart, no move).
 */
export const ReplicationPolicy = z
  .object({
    replicas: z.number().int().min(0).max(16),
    interval_seconds: z.number().min(1).max(86_400).default(10),
    retention: z
      .object({ primary: RetentionGridText.default(DEFAULT_RETENTION_GRID), replicas: RetentionGridText.default(DEFAULT_RETENTION_GRID) })
      .strict()
      .default({ primary: DEFAULT_RETENTION_GRID, replicas: DEFAULT_RETENTION_GRID }),
    /**
     * Pause the application's containers while each interval's `zfs snapshot` of its datasets
     * runs (docs/DESIGN.md §47): trades zfs-fuse's rare ~1 s write stall for a pause of the
     * snapshot's length every interval. Off when absent; only for datasets an application mounts.
     */
    freeze_during_snapshot: z.boolean().optional(),
  })
  .strict();
export type ReplicationPolicy = z.infer<typeof ReplicationPolicy>;

export const Dataset = z
  .object({
    dataset_id: Uuid,
    primary: Uuid,
    /** Bytes; null means no limit. Flocker's rule: at least 64 MiB, a multiple of 1024. */
    maximum_size: z.number().int().min(67108864).multipleOf(1024).nullable().default(null),
    metadata: DatasetMetadata.default({}),
    deleted: z.boolean().default(false),
    /** Continuous replication to standby nodes; null: none (an application's policy is copied here). */
    replication: ReplicationPolicy.nullable().default(null),
    /** Nodes the scheduler chose to hold standby copies; never the primary. */
    replicas: z.array(Uuid).default([]),
  })
  .strict();
export type Dataset = z.infer<typeof Dataset>;

export const RestartPolicy = z.discriminatedUnion('name', [
  z.object({ name: z.literal('never') }).strict(),
  z.object({ name: z.literal('always') }).strict(),
  z.object({ name: z.literal('on-failure'), maximum_retry_count: z.number().int().min(1).optional() }).strict(),
]);
export type RestartPolicy = z.infer<typeof RestartPolicy>;

const probeTiming = {
  initial_delay_seconds: z.number().min(0).max(3600).default(0),
  period_seconds: z.number().min(0.1).max(3600).default(10),
  timeout_seconds: z.number().min(0.1).max(3600).default(1),
  failure_threshold: z.number().int().min(1).max(100).default(3),
};

/**
 * Kubernetes probe semantics (docs/DESIGN.md §4). A tcp check may also
 * `send` a string (UTF-8) once connected and `expect` one in the answer's first line (HAProxy's
 * `tcp-check send` / `tcp-check expect string`): `{ send: "PING\r\n", expect: "+PONG" }`.
 */
export const HealthCheck = z.discriminatedUnion('type', [
  z.object({ type: z.literal('http'), port: Port, path: z.string().startsWith('/').default('/'), ...probeTiming }).strict(),
  z
    .object({
      type: z.literal('tcp'),
      port: Port,
      send: z.string().min(1).max(1024).optional(),
      expect: z.string().min(1).max(1024).optional(),
      ...probeTiming,
    })
    .strict(),
  z.object({ type: z.literal('exec'), command: z.array(z.string()).min(1), ...probeTiming }).strict(),
]);
export type HealthCheck = z.infer<typeof HealthCheck>;

/**
 * A published port: every node's proxy listens on `external` (on the node's address, or on
 * `host_ip` only — Compose's `127.0.0.1:8080:80`) and forwards to the container's `internal`
 * port wherever it runs. `protocol: 'udp'` is relayed per client address (docs/DESIGN.md §21).
 */
export const PortMapping = z
  .object({ internal: Port, external: Port, protocol: z.literal('udp').optional(), host_ip: Ipv4.optional() })
  .strict();
export type PortMapping = z.infer<typeof PortMapping>;
/** What makes two published ports clash: the number, per protocol (`53/tcp` and `53/udp` may coexist). */
export function externalKey(p: { external: number; protocol?: 'udp' | undefined }): string {
  return p.protocol === 'udp' ? `${p.external}/udp` : String(p.external);
}
/** A port reached by name only (Compose `expose:`), never published on a node's address. */
export const ExposedPort = z.object({ internal: Port, protocol: z.literal('udp').optional() }).strict();
/** A Compose network or alias name. */
export const NetworkName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/);
/** Highest name slot: a node's service subnet is at most a /16 (docs/DESIGN.md §21). */
export const MAX_NAME_SLOT = 65533;
export const NameSlot = z.number().int().min(1).max(MAX_NAME_SLOT);
export const Volume = z
  .object({
    dataset_id: Uuid,
    mountpoint: z.string().regex(/^\/[^\0]*$/, 'must be an absolute path'),
    /** Compose `data:/path:ro`: mounted read-only in this container. */
    read_only: z.boolean().optional(),
  })
  .strict();
export const Link = z
  .object({ alias: z.string().regex(/^[a-zA-Z0-9]+$/), local_port: Port, remote_port: Port })
  .strict();

/**
 * The id of a file's content (docs/DESIGN.md §22): a config's or a project file's is the
 * SHA-256 of its bytes (hex); a secret's is an HMAC-SHA256 of its bytes keyed with the control
 * service's key, so that the id tells nothing about a short secret.
 */
export const BlobId = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 hex digits (a content id)');
const RelativePath = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^(?!\/)(?!.*(^|\/)\.\.?(\/|$))[^\0]+$/, 'must be a relative path without "." or ".." parts');

/**
 * A file (or a small directory) that travels with the application (docs/DESIGN.md §22):
 * Compose's `configs:` and `secrets:`, and read-only bind mounts of files of the project.
 * The agent of whichever node runs the application writes it there (a secret on tmpfs only)
 * and mounts it read-only at `target`.
 */
export const AppFile = z
  .object({
    target: z.string().regex(/^\/[^\0]*$/, 'must be an absolute path'),
    kind: z.enum(['config', 'secret', 'bind']),
    /** A file: its content's id. */
    blob: BlobId.optional(),
    /** A directory (`bind` only): path inside it → content id. */
    tree: z.record(RelativePath, BlobId).optional(),
    /** Permission bits of the file(s) in the container; default 0444. */
    mode: z.number().int().min(0).max(0o7777).optional(),
    uid: z.string().regex(/^\d{1,10}$/).optional(),
    gid: z.string().regex(/^\d{1,10}$/).optional(),
  })
  .strict()
  .superRefine((f, ctx) => {
    if ((f.blob === undefined) === (f.tree === undefined)) ctx.addIssue({ code: 'custom', message: 'give exactly one of "blob" (a file) and "tree" (a directory)' });
    if (f.tree !== undefined && f.kind !== 'bind') ctx.addIssue({ code: 'custom', path: ['tree'], message: 'only a bind mount may be a directory' });
  });
export type AppFile = z.infer<typeof AppFile>;

export const DEPENDS_CONDITIONS = ['service_started', 'service_healthy', 'service_completed_successfully'] as const;
/** Compose's `depends_on` with its condition: the application starts only once it is met (docs/DESIGN.md §22). */
export const Dependency = z.object({ application: AppName, condition: z.enum(DEPENDS_CONDITIONS) }).strict();
export type Dependency = z.infer<typeof Dependency>;

/**
 * Placement for an application not pinned by `node_uuid`. Constraints use Swarm's syntax:
 * `node.labels.disk == ssd`, `node.host != 127.0.0.11`, `node.uuid == …`.
 */
export const Placement = z
  .object({
    constraints: z.array(z.string().max(256)).default([]),
    affinity: z.array(AppName).default([]),
    anti_affinity: z.array(AppName).default([]),
    strategy: z.enum(['spread', 'binpack', 'random']).default('spread'),
  })
  .strict();
export type Placement = z.infer<typeof Placement>;

/**
 * A command drover runs inside an application's container around a move (docs/DESIGN.md §5):
 * exec'd as an argv (no shell; write `["sh", "-c", "…"]` for one), bounded by `timeout_seconds`.
 */
export const MoveHook = z
  .object({
    command: z.array(z.string().min(1).max(4096)).min(1).max(64),
    timeout_seconds: z.number().int().min(1).max(3600).default(60),
  })
  .strict();
export type MoveHook = z.infer<typeof MoveHook>;

/**
 * What drover does for the application when it moves it. `before_stop` runs in the container
 * while it still serves, right before the last pre-copy round and the cutover: work that
 * would otherwise happen during the stop (PostgreSQL's shutdown checkpoint: `psql -c
 * CHECKPOINT`; compacting Redis's append-only file) is done — and pre-copied — beforehand.
 */
export const MovePolicy = z.object({ before_stop: MoveHook.optional() }).strict();
export type MovePolicy = z.infer<typeof MovePolicy>;

/**
 * One instance of an application that runs several (docs/DESIGN.md §30), placed by the
 * scheduler. Its container is `drover-<application>.<id>`; ids are never reused.
 */
export const Instance = z
  .object({
    id: z.number().int().min(1),
    node_uuid: Uuid,
    /** The application's revision (its container spec) this instance runs. */
    revision: z.number().int().min(0).default(0),
    /** Set when it is to stop (ms since the epoch): out of every route since, removed once drained. */
    draining_since: z.number().optional(),
  })
  .strict();
export type Instance = z.infer<typeof Instance>;

/**
 * A single application's container being replaced on its node (a new image, environment,
 * command…): its routes hold new connections, as a move's do, from the write that changed it
 * until the new container is ready, or `started_at` + the handoff deadline (docs/DESIGN.md §30).
 * Set and ended by the control service (control-service/desired/update-holds.ts). It holds
 * while `released_at` is absent (`updateHolding`).
 */
export const UpdateHold = z
  .object({
    /** The correlation id of the update in every process's records (`corr`). */
    id: Uuid,
    /** When the write that changed the spec was made (the control service's clock, ms). */
    started_at: z.number(),
    /** When every live proxy had applied the hold (or the wait's bound passed): the agent stops the old container only then. */
    held_at: z.number().nullable(),
    /** Live proxies that had not acknowledged the hold when `held_at` was set. */
    unacked: z.array(Uuid).max(1000).optional(),
    /**
     * When the hold ended (absent: it holds): the new container was `ready`, or the `deadline`
     * passed. The record stays until the next update or move, so that the route keeps the
     * update's id as its correlation id (the proxies' release records carry it).
     */
    released_at: z.number().optional(),
    ended: z.enum(['ready', 'deadline']).optional(),
  })
  .strict();
export type UpdateHold = z.infer<typeof UpdateHold>;

/** True while an update hold holds (present, not yet released). */
export function updateHolding(hold: UpdateHold | undefined): hold is UpdateHold {
  return hold !== undefined && hold.released_at === undefined;
}

/** How a change to an application with several instances replaces them (Compose's `deploy.update_config`). */
export const UpdateConfig = z
  .object({
    parallelism: z.number().int().min(1).max(256).default(1),
    delay_seconds: z.number().min(0).max(3600).default(0),
    order: z.enum(['stop-first', 'start-first']).default('stop-first'),
    failure_action: z.enum(['pause', 'rollback']).default('pause'),
    /** A new instance not ready (running, healthy) this long after it was placed fails the update. */
    monitor_seconds: z.number().min(1).max(3600).default(60),
  })
  .strict();
export type UpdateConfig = z.infer<typeof UpdateConfig>;

/** Where a rolling update stands; absent: none running. */
export const Rollout = z
  .object({
    state: z.enum(['updating', 'paused', 'rolled-back']),
    /** When the last batch of instances was replaced (ms since the epoch), for `delay_seconds`. */
    last_step_at: z.number().default(0),
    reason: z.string().max(1024).optional(),
  })
  .strict();
export type Rollout = z.infer<typeof Rollout>;

/**
 * Host paths that hold the same thing on every node, so a container may read its node's own
 * copy wherever it runs: the time zone and the system's CA certificates (read-only binds,
 * `host_binds`). Anything else on a host stays that host's: it would not follow a move.
 */
export const SHARED_HOST_PATHS = ['/etc/localtime', '/etc/timezone', '/usr/share/zoneinfo', '/etc/ssl/certs', '/etc/pki/ca-trust'] as const;

export function isSharedHostPath(path: string): boolean {
  if (path.split('/').includes('..')) return false;
  return SHARED_HOST_PATHS.some((p) => path === p || path.startsWith(`${p}/`));
}

export const Application = z
  .object({
    name: AppName,
    /** Where it runs now. Set by the operator, or by the scheduler from `placement`. */
    node_uuid: Uuid.optional(),
    /**
     * The node a deploy's topology file named at the last deploy. A re-deploy moves the
     * application only when the topology names a different node than this, so a move made
     * since (`drover move`, the API) is not undone by re-applying unchanged files.
     */
    pinned_node_uuid: Uuid.optional(),
    image: z.string().min(1).max(512),
    command_line: z.array(z.string()).max(4096).optional(),
    entrypoint: z.array(z.string()).max(64).optional(),
    // Docker takes any name without "="; dots and dashes are common (`discovery.type`).
    environment: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/), z.string()).default({}),
    ports: z.array(PortMapping).default([]),
    volumes: z.array(Volume).default([]),
    links: z.array(Link).default([]),
    restart_policy: RestartPolicy.default({ name: 'never' }),
    cpu_shares: z.number().int().min(1).max(1024).optional(),
    memory_limit: z.number().int().min(1048576).optional(),
    /** Flocker's container field (0–100), passed to Docker as `--memory-swappiness`. */
    swappiness: z.number().int().min(0).max(100).optional(),
    health_check: HealthCheck.optional(),
    placement: Placement.optional(),
    labels: Labels.default({}),
    // Compose keys with a Docker meaning of their own (Compose's names; see control-service/deploy/README.md).
    /** Compose's `container_name`: drover names the container `drover-<name>` and labels it with this. */
    container_name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/).optional(),
    hostname: z.string().regex(/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252})$/).optional(),
    /** `user`, `user:group`, or numeric ids, as Docker's `--user`. */
    user: z.string().min(1).max(256).optional(),
    working_dir: z.string().regex(/^\/[^\0]*$/, 'must be an absolute path').optional(),
    /** The signal the agent stops the container with (every stop, the cutover's too); Docker's default SIGTERM. */
    stop_signal: z.string().regex(/^(SIG[A-Z0-9+-]+|\d{1,2})$/).optional(),
    /** Seconds between the stop signal and SIGKILL; absent: the agent's `stop_timeout_seconds`. */
    stop_grace_period_seconds: z.number().int().min(0).max(3600).optional(),
    cap_add: z.array(z.string().regex(/^[A-Z_]+$/)).optional(),
    cap_drop: z.array(z.string().regex(/^[A-Z_]+$/)).optional(),
    read_only: z.boolean().optional(),
    /** Container path → Docker's tmpfs options (`size=65536k,mode=1777`, or ""). */
    tmpfs: z.record(z.string().regex(/^\/[^\0:]*$/, 'must be an absolute path'), z.string()).optional(),
    init: z.boolean().optional(),
    shm_size: z.number().int().min(1).optional(),
    /** Docker ulimits by name (`nofile`), soft and hard. */
    ulimits: z.record(z.string().regex(/^[a-z]+$/), z.object({ soft: z.number().int(), hard: z.number().int() }).strict()).optional(),
    /** Docker's log driver and its options. */
    logging: z.object({ driver: z.string().min(1), options: z.record(z.string(), z.string()).default({}) }).strict().optional(),
    /** Name servers, search domains and resolver options the container uses instead of the host's. */
    dns: z.array(z.string().regex(/^[0-9a-fA-F:.]+$/)).max(16).optional(),
    dns_search: z.array(z.string().regex(/^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,252}$/)).max(16).optional(),
    dns_opt: z.array(z.string().regex(/^[a-z][a-z0-9-]*(:\d+)?$/)).max(16).optional(),
    /** `host:address` lines added to the container's /etc/hosts (Docker's ExtraHosts; `host-gateway` allowed). */
    extra_hosts: z.array(z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9.-]{0,252}:[0-9a-fA-F:.]+$|^[a-zA-Z0-9][a-zA-Z0-9.-]{0,252}:host-gateway$/)).max(256).optional(),
    tty: z.boolean().optional(),
    stdin_open: z.boolean().optional(),
    /** Docker's --security-opt values (no-new-privileges, seccomp:unconfined, apparmor:…, label:…). */
    security_opt: z.array(z.string().min(1).max(256)).max(32).optional(),
    domainname: z.string().regex(/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252})$/).optional(),
    group_add: z.array(z.string().regex(/^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,31}$/)).max(64).optional(),
    oom_score_adj: z.number().int().min(-1000).max(1000).optional(),
    /** CPUs the container may run on (`0-3`, `0,2`). */
    cpuset: z.string().regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/).optional(),
    ipc: z.enum(['private', 'shareable', 'host']).optional(),
    /** Bytes: Docker's soft memory limit (--memory-reservation). */
    mem_reservation: z.number().int().min(1).optional(),
    /** Bytes of memory plus swap (--memory-swap); -1 unlimited swap. */
    memswap_limit: z.number().int().min(-1).optional(),
    /** Most processes in the container; -1 unlimited. */
    pids_limit: z.number().int().min(-1).optional(),
    /**
     * Read-only binds of system files every node has (time zone, CA certificates): the node's
     * own copy, wherever the application runs (control-service/deploy SHARED_HOST_PATHS).
     */
    host_binds: z
      .array(
        z
          .object({
            source: z.string().refine(isSharedHostPath, `must be one of ${SHARED_HOST_PATHS.join(', ')} or below one`),
            target: z.string().regex(/^\/[^\0]*$/, 'must be an absolute path'),
          })
          .strict(),
      )
      .max(16)
      .optional(),
    /** Kernel settings of the container's own namespaces (net.*, fs.mqueue.*, the IPC kernel.* ones). */
    sysctls: z.record(z.string().regex(/^(net|kernel|fs)\.[a-z0-9_.\-/]+$/), z.string().min(1)).optional(),
    /** Files mounted read-only into the container (docs/DESIGN.md §22). */
    files: z.array(AppFile).max(256).optional(),
    /**
     * Environment variables whose values are secret: name → the secret's id. The value is kept
     * encrypted by the control service and never returned by a read; the agent of the node
     * that runs the application fetches it when it creates the container.
     */
    secret_environment: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/), BlobId).optional(),
    /** Started only once each of these is (docs/DESIGN.md §22); Compose's `depends_on`. */
    depends_on: z.array(Dependency).max(256).optional(),
    /** The deploy project that owns this application; other projects are left alone. */
    project: z.string().max(128).optional(),
    // Service discovery by name (docs/DESIGN.md §21).
    /** Compose `expose:`: container ports reached by name only. */
    expose: z.array(ExposedPort).optional(),
    /** Compose networks the service is on → its aliases there; absent: the project's `default` network. */
    networks: z.record(NetworkName, z.array(NetworkName)).optional(),
    /** Its address's offset in every node's service subnet; given by a deploy, kept for the application's life. */
    name_slot: NameSlot.optional(),
    /** Names its container resolves (services of its project sharing a network, itself and aliases) → their name slot. */
    peers: z.record(NetworkName, NameSlot).optional(),
    /** Continuous replication of every dataset it mounts (copied onto them). */
    replication: ReplicationPolicy.nullable().default(null),
    /** Hooks around a move (`x-drover.move`); changing it needs no new container. */
    move: MovePolicy.optional(),
    // Several instances (docs/DESIGN.md §30): only for an application without volumes.
    /** How many instances (Compose `deploy.replicas`); absent: one, the classic single application with `node_uuid`. */
    instances: z.number().int().min(0).max(256).optional(),
    /** `global`: one instance on every node that satisfies its constraints (Compose `deploy.mode: global`). */
    mode: z.literal('global').optional(),
    /** Where its instances run; set by the scheduler, kept across writes that do not give it. */
    placed: z.array(Instance).optional(),
    /** Its container spec's revision: raised by every change of it (a rolling update follows). */
    revision: z.number().int().min(0).optional(),
    /** Older revisions still run by some instance: revision → the application as it was (its spec fields). */
    revisions: z.record(z.string().regex(/^\d+$/), z.record(z.string(), z.unknown())).optional(),
    /** The next instance id (ids are never reused). */
    next_instance: z.number().int().min(1).optional(),
    update_config: UpdateConfig.optional(),
    rollout: Rollout.optional(),
    /** A single application's update holding its connections (docs/DESIGN.md §30); the control service's own, never a user's. */
    update_hold: UpdateHold.optional(),
  })
  .strict();
export type Application = z.infer<typeof Application>;

export const Lease = z
  .object({
    dataset_id: Uuid,
    node_uuid: Uuid,
    /** Absolute expiry, milliseconds since the epoch; null never expires. */
    expires_at: z.number().nullable(),
  })
  .strict();
export type Lease = z.infer<typeof Lease>;

/** The phases, their order and who may post each step: common/migration-protocol.ts. */
export const MigrationPhase = z.enum(MIGRATION_PHASES);
export type MigrationPhase = z.infer<typeof MigrationPhase>;

/**
 * What makes a migration record a failover (docs/DESIGN.md §18): the control service moved the
 * application and its datasets off a `down` node to the replica with the newest snapshot, in
 * one store write, without the source's help. The record is written in phase `done`; its
 * `generation` fences the failed node (it learns it is stale before starting anything).
 */
export const FailoverInfo = z
  .object({
    /** Why: the failed node's silence when the control service decided, milliseconds. */
    failed_silent_ms: z.number().min(0),
    /** The newest snapshot the chosen node held of each dataset: the data the application restarts from. */
    snapshots: z.array(z.object({ dataset_id: Uuid, snapshot: z.string().nullable(), created_at: z.number().nullable() }).strict()),
    /** now − the oldest of those snapshots' creation times at the decision, seconds: an upper bound of the data lost that includes the detection time. */
    snapshot_age_seconds: z.number().min(0).nullable(),
    /**
     * The data window lost, seconds: the age of the oldest of those snapshots when the failed
     * node was last heard from (the decision − `failed_silent_ms`). Null without datasets, or in
     * records written before it existed.
     */
    data_window_seconds: z.number().min(0).nullable().default(null),
    /**
     * When every live proxy had applied the route that holds the application's connections (or
     * the bounded wait for them ended), so the chosen node may promote: null while waiting;
     * absent in records written before the hold existed (docs/DESIGN.md §18).
     */
    routes_held_at: z.number().nullable().optional(),
    /** Live proxies that had not acknowledged the hold when the bounded wait ended (normally none). */
    routes_unacked: z.array(Uuid).optional(),
    /** When the application ran (healthy, with a health check) on the chosen node; null until then. */
    ready_at: z.number().nullable().default(null),
    /** Copies the failed node kept of what it wrote after the snapshot (never destroyed by drover). */
    diverged: z
      .array(z.object({ dataset_id: Uuid, node_uuid: Uuid, name: z.string().max(512), kept_at: z.number() }).strict())
      .default([]),
    /** Copies of the failed node that held nothing after the snapshot: kept in place as replicas. */
    rejoined: z.array(z.object({ dataset_id: Uuid, node_uuid: Uuid, at: z.number() }).strict()).default([]),
  })
  .strict();
export type FailoverInfo = z.infer<typeof FailoverInfo>;

export const Migration = z
  .object({
    id: Uuid,
    application: AppName.nullable(),
    dataset_ids: z.array(Uuid),
    from: Uuid,
    to: Uuid,
    phase: MigrationPhase,
    /** Fencing generation: only the holder of the newest generation may run or write. */
    generation: z.number().int().min(0),
    round: z.number().int().min(0).default(0),
    bytes_sent: z.number().int().min(0).default(0),
    bytes_total: z.number().int().min(0).nullable().default(null),
    rate_bytes_per_second: z.number().min(0).nullable().default(null),
    /**
     * The current pre-copy round's own figures (docs/DESIGN.md §27): bytes of this round sent
     * so far, and its expected size (the datasets' referenced bytes for the first, full round;
     * the previous delta after that). `bytes_sent`/`bytes_total` add up every round; a display
     * of one round's progress uses these. Absent from records of agents that predate them.
     */
    round_bytes_sent: z.number().int().min(0).optional(),
    round_bytes_total: z.number().int().min(0).nullable().optional(),
    /** When each phase began (the control service's clock), in order; the first phase began at `started_at`. */
    phases: z.array(z.object({ phase: MigrationPhase, at: z.number() }).strict()).max(32).optional(),
    started_at: z.number(),
    updated_at: z.number(),
    cutover_started_at: z.number().nullable().default(null),
    cutover_ms: z.number().nullable().default(null),
    error: z.string().nullable().default(null),
    /** Present when this record is a failover (docs/DESIGN.md §18), not a move. */
    failover: FailoverInfo.optional(),
  })
  .strict();
export type Migration = z.infer<typeof Migration>;

/** The whole desired configuration, as the store keeps it. */
export const Desired = z
  .object({
    nodes: z.array(Node).default([]),
    datasets: z.array(Dataset).default([]),
    applications: z.array(Application).default([]),
    leases: z.array(Lease).default([]),
    migrations: z.array(Migration).default([]),
  })
  .strict();
export type Desired = z.infer<typeof Desired>;

// ---------------------------------------------------------------- observed state

export const ObservedSnapshot = z.object({ name: z.string(), guid: z.string(), createtxg: z.number().int() }).strict();
export const ObservedDataset = z
  .object({
    dataset_id: Uuid,
    path: z.string().nullable(),
    writable: z.boolean(),
    maximum_size: z.number().int().nullable(),
    used_bytes: z.number().int().min(0),
    snapshots: z.array(ObservedSnapshot),
  })
  .strict();
export type ObservedDataset = z.infer<typeof ObservedDataset>;

export const ObservedContainer = z
  .object({
    name: AppName,
    image: z.string(),
    running: z.boolean(),
    health: z.enum(['unknown', 'starting', 'healthy', 'unhealthy']),
    restart_count: z.number().int().min(0),
    /** The exit code of a container that ran and stopped; absent while it runs or when never started. */
    exit_code: z.number().int().optional(),
    /** Host ports the agent published, keyed by the application's internal port. */
    published: z.array(z.object({ internal: Port, host: Ipv4, host_port: Port, protocol: z.literal('udp').optional() }).strict()),
    generation: z.number().int().min(0),
    /** The update (`Application.update_hold.id`) whose spec this container runs; absent when none is in progress. */
    update: Uuid.optional(),
  })
  .strict();
export type ObservedContainer = z.infer<typeof ObservedContainer>;

/**
 * Something an agent could not do, or chose not to do yet: a planner's blocked reason, or a
 * change that failed (with its error). Shown by the API and the CLI beside the node.
 */
export const NodeProblem = z
  .object({
    /** `dataset:<id>`, `container:<name>`, `migration:<id>`, `node:<uuid>`. */
    subject: z.string().max(256),
    kind: z.enum(['blocked', 'failed']),
    reason: z.string().max(2048),
  })
  .strict();
export type NodeProblem = z.infer<typeof NodeProblem>;

/**
 * Replication of one dataset to one replica, as the primary's agent sees it. Ages use the
 * primary's clock only, so the nodes' clocks need not agree.
 */
export const ReplicaStatus = z
  .object({
    dataset_id: Uuid,
    /** The replica's node uuid. */
    replica: Uuid,
    state: z.enum(['seeding', 'ok', 'diverged', 'error', 'paused']),
    /** The newest snapshot both sides have. */
    newest_snapshot: z.string().nullable(),
    /** Its creation time, ms since the epoch (the primary's clock). */
    newest_snapshot_created_at: z.number().nullable(),
    /** now − newest_snapshot_created_at at report time, seconds (the primary's clock). */
    lag_seconds: z.number().min(0).nullable(),
    bytes_sent_total: z.number().int().min(0),
    last_success_at: z.number().nullable(),
    last_error: z.object({ code: z.string(), message: z.string().max(2048) }).strict().nullable(),
  })
  .strict();
export type ReplicaStatus = z.infer<typeof ReplicaStatus>;
export const ReplicaState = ReplicaStatus.shape.state;
export type ReplicaState = z.infer<typeof ReplicaState>;

/** A copy a node kept of what it wrote before a failover moved its dataset away (docs/DESIGN.md §18). */
export const DivergedCopy = z
  .object({
    dataset_id: Uuid,
    /** The full zfs name of the kept copy. */
    name: z.string().max(512),
    /** The failover's generation it was kept for. */
    generation: z.number().int().min(0),
    used_bytes: z.number().int().min(0),
  })
  .strict();
export type DivergedCopy = z.infer<typeof DivergedCopy>;

export const NodeReport = z
  .object({
    uuid: Uuid,
    host: Ipv4,
    /** Boot id of the agent's host; a new era means the node restarted. */
    era: z.string().min(1).max(64),
    labels: Labels.default({}),
    transfer: NodeTransfer.default({}),
    /**
     * Where the agent serves its applications' logs to the control service (docs/DESIGN.md
     * §27): HTTPS on the node's address, this port, for the control service's certificate
     * only. Absent: it serves none (no TLS identity, or the port was taken).
     */
    logs: z.object({ port: Port }).strict().optional(),
    datasets: z.array(ObservedDataset),
    containers: z.array(ObservedContainer),
    problems: z.array(NodeProblem).max(1000).default([]),
    /** The primary's view of replication of its datasets, one entry per (dataset, replica). */
    replication: z.array(ReplicaStatus).max(10_000).default([]),
    /**
     * The order of `replication` among this agent's reports of it (ReplicationReport.seq):
     * the control service keeps the replication status with the highest, so a full report
     * built before a replication-only report cannot roll it back (docs/DESIGN.md §38).
     * Absent (an older agent): the report's replication is taken as the newest.
     */
    replication_seq: z.number().int().min(0).optional(),
    /**
     * Copies this node kept after a failover took its datasets elsewhere (docs/DESIGN.md §18):
     * `<pool>/drover-diverged/<dataset_id>-g<generation>`, read-only, never destroyed by drover.
     */
    diverged: z.array(DivergedCopy).max(1000).optional(),
    /**
     * This node's copies that held nothing written after a failover's promoted snapshot: rolled
     * back to it and kept in place, they become replicas (docs/DESIGN.md §18).
     */
    rejoined: z.array(z.object({ dataset_id: Uuid, generation: z.number().int().min(0) }).strict()).max(1000).optional(),
  })
  .strict();
export type NodeReport = z.infer<typeof NodeReport>;

/**
 * The replication status alone (`POST /v1/drover/agents/replication`, docs/DESIGN.md §38): sent
 * by a primary's agent the moment a replication step ends or a pair's state changes, between its
 * full reports. The control service merges it into what it knows of the node: only the
 * replication status is replaced, and only when `seq` is higher than the one it holds; the
 * rest of the node's last report, its lease and its liveness are untouched.
 */
export const ReplicationReport = z
  .object({
    uuid: Uuid,
    /** The boot era of the node's last full report: a report of another era is not merged. */
    era: z.string().min(1).max(64),
    /**
     * Increases whenever the status changes (the agent's clock in ms at the change, or one
     * more than the last, whichever is higher: a restarted agent still counts upwards).
     */
    seq: z.number().int().min(0),
    replication: z.array(ReplicaStatus).max(10_000),
  })
  .strict();
export type ReplicationReport = z.infer<typeof ReplicationReport>;

/**
 * Datasets of an application that no node was chosen for yet (absent from the topology and
 * never placed) carry this primary until the scheduler places the application and sets the
 * primary of its datasets to the chosen node. No node has this uuid, so no agent acts on it.
 */
export const UNPLACED_PRIMARY = '00000000-0000-0000-0000-000000000000';

/**
 * The shapes of the wire contract between the control service and the per-node programs
 * (agent, proxy, volume plugin). Their routes, under `/v1/drover/`, are in api-routes.ts.
 *
 * Push is a long-poll: a GET with `?after=<version>` answers at once when the control
 * service's version is newer, otherwise it waits (up to `wait_ms`, default 25 s) and answers
 * as soon as a change lands — so a change reaches a waiting program within milliseconds.
 * A 200 with an unchanged version means "nothing new, ask again".
 */
import { z } from 'zod';
import { AppName, Application, BlobId, Dataset, Ipv4, Lease, Migration, MigrationPhase, NameSlot, Node, NodeReport, Port, ReplicationReport, Uuid } from './model.ts';

/**
 * Query of a long-poll: `?after=<version>&wait_ms=`. Values arrive as strings, hence the
 * coercion.
 */
export const LongPollQuery = z
  .object({
    /** The version the caller has; absent: answer at once. */
    after: z.coerce.number().int().min(0).optional(),
    /** How long to wait for a change before answering with the same version. */
    wait_ms: z.coerce.number().int().min(0).max(120_000).default(25_000),
  })
  .strict();

export const Version = z.number().int().min(0);

/**
 * What one agent needs to converge: its node, and the part of the cluster's desired
 * configuration that concerns it — every node; the applications placed on it or in its
 * migrations; the datasets primary on it, mounted by those applications, carried by its
 * migrations, those it is a replica of, or present on it (as it reported); their leases; its
 * unfinished migrations. A dataset absent from the view is not a tombstone (only
 * `deleted: true` is).
 *
 * Replication (docs/DESIGN.md §17): on the primary's node a dataset carries its `replication`
 * policy and the `replicas` chosen (the nodes to send to; their endpoints are in `nodes`); on
 * a replica's node, the dataset names it in `replicas`, and its copy stays read-only. A copy
 * present on a node that is neither primary nor replica (released) is kept read-only until
 * the agent prunes it, never while it is the newest copy anywhere.
 */
/**
 * How an application another one depends on is doing now (docs/DESIGN.md §22), as the control
 * service sees it across nodes: `started` (its container runs, or ran and ended with 0),
 * `healthy` (it runs and its health check passes), `completed` (it ended with exit code 0).
 * All false when it runs nowhere known.
 */
export const DependencyState = z.object({ started: z.boolean(), healthy: z.boolean(), completed: z.boolean() }).strict();
export type DependencyState = z.infer<typeof DependencyState>;

export const AgentDesired = z
  .object({
    version: Version,
    node: Node.nullable(),
    nodes: z.array(Node),
    datasets: z.array(Dataset),
    applications: z.array(Application),
    leases: z.array(Lease),
    /** Migrations that involve this node and are not finished. */
    migrations: z.array(Migration),
    /** The state of every application its applications depend on (`depends_on`), by name; absent: none. */
    dependencies: z.record(AppName, DependencyState).optional(),
  })
  .strict();
export type AgentDesired = z.infer<typeof AgentDesired>;

/**
 * A file's content for an application the node runs or is receiving (docs/DESIGN.md §22); a
 * secret decrypted. Asked by the agent when it creates the container; not an operator's read.
 */
export const AgentFileAnswer = z.object({ id: BlobId, kind: z.enum(['file', 'secret']), content_base64: z.string() }).strict();
export type AgentFileAnswer = z.infer<typeof AgentFileAnswer>;

/**
 * Where one application's external port leads now. `target` is null when the application
 * runs nowhere known; `hold` is true during a cutover: new connections are accepted and
 * held, not forwarded and not refused.
 */
export const Route = z
  .object({
    application: z.string(),
    external_port: Port,
    target: z.object({ host: Ipv4, port: Port, node_uuid: Uuid }).strict().nullable(),
    hold: z.boolean(),
    /**
     * An application with several instances (docs/DESIGN.md §30): every instance ready now.
     * New connections are spread over them; `target` is the first (null: none ready).
     */
    targets: z.array(z.object({ host: Ipv4, port: Port, node_uuid: Uuid }).strict()).optional(),
    /** Migration generation that produced this route; 0 when none. */
    generation: z.number().int().min(0),
    /** Absent: TCP. UDP is relayed per client address (docs/DESIGN.md §21). */
    protocol: z.literal('udp').optional(),
    /** Listen on this address only, instead of the node's (Compose `127.0.0.1:8080:80`). */
    host_ip: Ipv4.optional(),
    /**
     * A name route (docs/DESIGN.md §21): listen on `<the proxy's service subnet> + name_slot`
     * at `external_port` (the container's own port) instead of on the node's address.
     */
    name_slot: NameSlot.optional(),
    /**
     * The id of that migration (absent when none), or of the update holding the route now
     * (docs/DESIGN.md §30): the proxies' correlation id for its hold (docs/DESIGN.md §25).
     */
    migration: z.string().max(64).optional(),
  })
  .strict();
export type Route = z.infer<typeof Route>;

export const RouteTable = z.object({ version: Version, routes: z.array(Route) }).strict();
export type RouteTable = z.infer<typeof RouteTable>;

export const RouteAck = z.object({ node_uuid: Uuid, version: Version }).strict();
export type RouteAck = z.infer<typeof RouteAck>;

/** An agent's step in a migration; refused (409) unless `generation` is the migration's own. */
export const MigrationUpdate = z
  .object({
    node_uuid: Uuid,
    generation: z.number().int().min(0),
    phase: MigrationPhase,
    round: z.number().int().min(0).optional(),
    bytes_sent: z.number().int().min(0).optional(),
    bytes_total: z.number().int().min(0).nullable().optional(),
    rate_bytes_per_second: z.number().min(0).nullable().optional(),
    /** The current round's own figures (Migration's `round_bytes_sent`, `round_bytes_total`). */
    round_bytes_sent: z.number().int().min(0).optional(),
    round_bytes_total: z.number().int().min(0).nullable().optional(),
    error: z.string().nullable().optional(),
  })
  .strict();
export type MigrationUpdate = z.infer<typeof MigrationUpdate>;

export const ReportAnswer = z.object({ version: Version }).strict();
/** `merged`: false when the control service kept what it had (an older `seq`, another era, or no full report of the node yet). */
export const ReplicationReportAnswer = z.object({ merged: z.boolean() }).strict();
export { NodeReport, ReplicationReport };

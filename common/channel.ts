/**
 * The wire contract between the control service and the per-node programs (agent, proxy,
 * volume plugin). Paths live under `/v1/drover/` beside Flocker's v1 API.
 *
 * Push is a long-poll: a GET with `?after=<version>` answers at once when the control
 * service's version is newer, otherwise it waits (up to `wait_ms`, default 25 s) and answers
 * as soon as a change lands — so a change reaches a waiting program within milliseconds.
 * A 200 with an unchanged version means "nothing new, ask again".
 */
import { z } from 'zod';
import { Application, Dataset, Ipv4, Lease, Migration, MigrationPhase, Node, NodeReport, Port, Uuid } from './model.ts';

export const CHANNEL_PATHS = {
  /** POST NodeReport → 200 { version }. Registers the node on first call. */
  report: '/v1/drover/agents/report',
  /** GET ?after=&wait_ms= → AgentDesired. */
  desired: (nodeUuid: string) => `/v1/drover/agents/${nodeUuid}/desired`,
  /** GET ?after=&wait_ms= → RouteTable. */
  routes: '/v1/drover/routes',
  /** POST RouteAck → 200. A proxy confirms it has applied a route table version. */
  routeAck: '/v1/drover/routes/ack',
  /** POST MigrationUpdate → 200 Migration (409 on a stale generation). */
  migrationUpdate: (id: string) => `/v1/drover/migrations/${id}/update`,
} as const;

export const Version = z.number().int().min(0);

/**
 * What one agent needs to converge: its node, and the part of the cluster's desired
 * configuration that concerns it — every node; the applications placed on it or in its
 * migrations; the datasets primary on it, mounted by those applications, carried by its
 * migrations or present on it (as it reported); their leases; its unfinished migrations.
 * A dataset absent from the view is not a tombstone (only `deleted: true` is).
 */
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
  })
  .strict();
export type AgentDesired = z.infer<typeof AgentDesired>;

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
    /** Migration generation that produced this route; 0 when none. */
    generation: z.number().int().min(0),
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
    error: z.string().nullable().optional(),
  })
  .strict();
export type MigrationUpdate = z.infer<typeof MigrationUpdate>;

export const ReportAnswer = z.object({ version: Version }).strict();
export { NodeReport };

/**
 * The one table of the control service's routes (docs/DESIGN.md §2): for each route its
 * method, path (fastify syntax, `:name` for a path parameter), the zod schemas of its path
 * parameters, query and body, the request headers it reads, and its answers per status.
 *
 * Built from this table: the fastify routes (control-service/http/router.ts registers a
 * handler per key), the OpenAPI document (control-service/http/openapi.ts) and the one
 * client (api-client.ts), which validates every answer with the schema of its status.
 * Shapes live in api.ts (Flocker's v1 and drover's additions) and channel.ts (the agent
 * channel); paths live only here.
 */
import { z } from 'zod';
import {
  ApplicationStatus,
  ContainerMoveAnswer,
  CreateSecretAnswer,
  CreateSecretBody,
  ContainerState,
  CreateContainerBody,
  CreateDatasetBody,
  DatasetDetail,
  DatasetMoveAnswer,
  DatasetState,
  DeployAnswer,
  DeployBody,
  EraAnswer,
  ErrorBody,
  LeaseAnswer,
  LeaseBody,
  MoveApplicationAnswer,
  MoveApplicationBody,
  MoveContainerBody,
  MoveDatasetBody,
  NodeSchedulingAnswer,
  TrustHostKeyAnswer,
  TrustHostKeyBody,
  NodeStateAnswer,
  ReplicationAnswer,
  ReplicationBody,
  RouteAcksAnswer,
  ScaleApplicationBody,
  StartMigrationBody,
  VersionAnswer,
} from './api.ts';
import { Backup, RestoreAnswer, RestoreBody } from './backup.ts';
import { AgentDesired, AgentFileAnswer, LongPollQuery, MigrationUpdate, NodeReport, ReplicationReport, ReplicationReportAnswer, ReportAnswer, RouteAck, RouteTable } from './channel.ts';
import { AppName, Application, BlobId, Dataset, Migration, Uuid } from './model.ts';

export interface RouteAnswer {
  description: string;
  /** The JSON body's schema; absent: an empty body (or, with `contentType`, not JSON). */
  schema?: z.ZodType;
  /** Not JSON (e.g. `text/event-stream`). */
  contentType?: string;
}

/**
 * Who may call a route (docs/DESIGN.md §23), from the role in the caller's certificate
 * (common/identity.ts): `user` — users only; `any` — any authenticated caller; `node` —
 * users, and nodes within `rule` (what the rule lets a node do is in
 * control-service/http/authorize.ts, one function per rule).
 */
export type RouteAccess = { role: 'user' } | { role: 'any' } | { role: 'node'; rule: NodeRule };

/**
 * What a node may do, and only for itself: `read` (the configuration and state its agent,
 * proxy and volume plugin read: nodes, datasets, leases, migrations, route acks);
 * `own-report` (its own report); `own-view` (its own desired view); `route-table` (the
 * route table, marking only itself live); `own-route-ack`; `own-lease` (take, renew or
 * release a lease for itself); `dataset-on-itself` (its volume plugin creates, moves or
 * deletes a dataset whose primary is, or becomes, itself); `migration-party` (read a
 * migration it is the source or target of); `migration-step` (post a step of such a
 * migration, as itself).
 */
export type NodeRule = 'read' | 'own-report' | 'own-view' | 'route-table' | 'own-route-ack' | 'own-lease' | 'dataset-on-itself' | 'migration-party' | 'migration-step';

const USER: RouteAccess = { role: 'user' };
const ANY: RouteAccess = { role: 'any' };
const node = (rule: NodeRule): RouteAccess => ({ role: 'node', rule });

export interface RouteSpec {
  /** Who may call it (docs/DESIGN.md §23). */
  access: RouteAccess;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** fastify syntax: `/v1/configuration/datasets/:dataset_id`. */
  path: string;
  summary: string;
  /** The OpenAPI tag (a group of routes). */
  tag: string;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Request headers the route reads: name → what it does (for the document). */
  headers?: Record<string, string>;
  answers: Record<number, RouteAnswer>;
}

const error = (description: string): RouteAnswer => ({ description, schema: ErrorBody });
const IF_MATCHES = { 'X-If-Configuration-Matches': 'apply only if the configuration still has this tag (else 412)' };
const DatasetParams = z.object({ dataset_id: Uuid });
const NameParams = z.object({ name: AppName });
const NodeParams = z.object({ uuid: Uuid });

export const ROUTES = {
  // ------------------------------------------------------------ Flocker v1: version, nodes
  version: {
    access: ANY,
    method: 'GET',
    path: '/v1/version',
    tag: 'nodes',
    summary: 'The version of the API (Flocker 1.15 compatible) and of drover',
    answers: { 200: { description: 'versions', schema: VersionAnswer } },
  },
  nodes: {
    access: node('read'),
    method: 'GET',
    path: '/v1/state/nodes',
    tag: 'nodes',
    summary: 'Nodes: known (reporting) or unknown (silent), with address, era, labels',
    answers: { 200: { description: 'nodes', schema: z.array(NodeStateAnswer) } },
  },
  nodeByEra: {
    access: node('read'),
    method: 'GET',
    path: '/v1/state/nodes/by_era/:era',
    tag: 'nodes',
    summary: 'The node whose current boot era this is',
    params: z.object({ era: z.string().min(1).max(64) }),
    answers: { 200: { description: 'the node', schema: EraAnswer }, 404: error('no node has this era (yet); ask again') },
  },

  // ------------------------------------------------------------ drover: the operator's tools for nodes (docs/DESIGN.md §19)
  cordonNode: {
    access: USER,
    method: 'POST',
    path: '/v1/drover/nodes/:uuid/cordon',
    tag: 'nodes',
    summary: 'Cordon a node: nothing new is placed there (applications, replicas); what runs there stays',
    params: NodeParams,
    answers: { 200: { description: 'the node, cordoned', schema: NodeSchedulingAnswer }, 404: error('no such node') },
  },
  uncordonNode: {
    access: USER,
    method: 'POST',
    path: '/v1/drover/nodes/:uuid/uncordon',
    tag: 'nodes',
    summary: 'Make a cordoned or draining node schedulable again (a drain starts no more moves; running ones finish)',
    params: NodeParams,
    answers: { 200: { description: 'the node, schedulable', schema: NodeSchedulingAnswer }, 404: error('no such node') },
  },
  drainNode: {
    access: USER,
    method: 'POST',
    path: '/v1/drover/nodes/:uuid/drain',
    tag: 'nodes',
    summary: 'Cordon a node and move every application off it with its data (live moves, two at a time; replicas are replaced). Answers the moves started and what cannot move, and why',
    params: NodeParams,
    answers: { 200: { description: 'the node, draining', schema: NodeSchedulingAnswer }, 404: error('no such node') },
  },
  nodeScheduling: {
    access: USER,
    method: 'GET',
    path: '/v1/drover/nodes/:uuid/scheduling',
    tag: 'nodes',
    summary: "A node's cordon or drain: applications left, moves off it, what cannot move and why",
    params: NodeParams,
    answers: { 200: { description: 'the node', schema: NodeSchedulingAnswer }, 404: error('no such node') },
  },
  trustHostKey: {
    access: USER,
    method: 'POST',
    path: '/v1/drover/nodes/:uuid/trust-host-key',
    tag: 'nodes',
    summary:
      "Accept a node's new ssh host key on purpose (after a reinstall): the key it reports now, or the fingerprint given (checked against what it reports; given ahead of its report, pinned as it is). Senders pin it from then on; the node's refused-key problem clears",
    params: NodeParams,
    body: TrustHostKeyBody,
    answers: {
      200: { description: 'the key now pinned', schema: TrustHostKeyAnswer },
      404: error('no such node'),
      409: error('nothing to accept (the node reports the key it is pinned to, or has no ssh endpoint), or the fingerprint given is not the one the node reports: nothing changed'),
    },
  },

  // ------------------------------------------------------------ Flocker v1: datasets
  datasets: {
    access: node('read'),
    method: 'GET',
    path: '/v1/configuration/datasets',
    tag: 'datasets',
    summary: 'The datasets of the desired configuration (X-Configuration-Tag header)',
    answers: { 200: { description: 'datasets', schema: z.array(Dataset) } },
  },
  createDataset: {
    access: node('dataset-on-itself'),
    method: 'POST',
    path: '/v1/configuration/datasets',
    tag: 'datasets',
    summary: 'Create a dataset (the server picks dataset_id when none is given)',
    body: CreateDatasetBody,
    headers: IF_MATCHES,
    answers: { 201: { description: 'created', schema: Dataset }, 400: error('bad body'), 409: error('dataset_id in use'), 412: error('the configuration changed') },
  },
  moveDataset: {
    access: node('dataset-on-itself'),
    method: 'POST',
    path: '/v1/configuration/datasets/:dataset_id',
    tag: 'datasets',
    summary: 'Move a dataset to another primary: a migration carries its data; primary changes at handoff',
    params: DatasetParams,
    body: MoveDatasetBody,
    headers: IF_MATCHES,
    answers: {
      200: { description: 'the dataset as stored now, and its migration', schema: DatasetMoveAnswer },
      404: error('no such dataset'),
      405: error('the dataset was deleted'),
      409: error('leased elsewhere, mounted by a container, or moving elsewhere'),
      412: error('the configuration changed'),
    },
  },
  deleteDataset: {
    access: node('dataset-on-itself'),
    method: 'DELETE',
    path: '/v1/configuration/datasets/:dataset_id',
    tag: 'datasets',
    summary: 'Soft-delete a dataset (agents then destroy their copies); idempotent',
    params: DatasetParams,
    headers: IF_MATCHES,
    answers: { 200: { description: 'the dataset, deleted', schema: Dataset }, 404: error('no such dataset'), 409: error('leased, mounted or moving'), 412: error('the configuration changed') },
  },
  datasetDetails: {
    access: USER,
    method: 'GET',
    path: '/v1/drover/datasets',
    tag: 'datasets',
    summary: 'Every dataset with what each node holds of it: writable, bytes used, snapshots (count and newest)',
    answers: { 200: { description: 'datasets and their copies', schema: z.array(DatasetDetail) } },
  },
  datasetStates: {
    access: node('read'),
    method: 'GET',
    path: '/v1/state/datasets',
    tag: 'state',
    summary: 'Datasets as the agents see them; primary and path only where one node has it writable',
    answers: { 200: { description: 'dataset states', schema: z.array(DatasetState) } },
  },

  // ------------------------------------------------------------ Flocker v1: containers
  containers: {
    access: USER,
    method: 'GET',
    path: '/v1/configuration/containers',
    tag: 'containers',
    summary: 'The applications of the desired configuration',
    answers: { 200: { description: 'containers', schema: z.array(Application) } },
  },
  createContainer: {
    access: USER,
    method: 'POST',
    path: '/v1/configuration/containers',
    tag: 'containers',
    summary: 'Add an application; without node_uuid the scheduler places it',
    body: CreateContainerBody,
    headers: IF_MATCHES,
    answers: {
      201: { description: 'created (with the node the scheduler chose, if it could)', schema: Application },
      400: error('bad body'),
      404: error('a volume names no dataset'),
      409: error('name or external port in use, duplicate link alias or local port, dataset on another node or used by another container'),
      412: error('the configuration changed'),
    },
  },
  moveContainer: {
    access: USER,
    method: 'POST',
    path: '/v1/configuration/containers/:name',
    tag: 'containers',
    summary: 'Move an application (and its datasets, with their data) to another node: starts a migration',
    params: NameParams,
    body: MoveContainerBody,
    headers: IF_MATCHES,
    answers: {
      200: { description: 'the application as stored now (node_uuid changes at handoff), and its migration', schema: ContainerMoveAnswer },
      404: error('no such container or node'),
      409: error('leased elsewhere, or already moving elsewhere'),
      412: error('the configuration changed'),
    },
  },
  deleteContainer: {
    access: USER,
    method: 'DELETE',
    path: '/v1/configuration/containers/:name',
    tag: 'containers',
    summary: 'Remove an application; its datasets stay',
    params: NameParams,
    headers: IF_MATCHES,
    answers: { 200: { description: 'removed (empty body)' }, 404: error('no such container'), 409: error('it is moving'), 412: error('the configuration changed') },
  },
  containerStates: {
    access: USER,
    method: 'GET',
    path: '/v1/state/containers',
    tag: 'state',
    summary: 'Containers as the agents see them, with running, health and published ports',
    answers: { 200: { description: 'container states', schema: z.array(ContainerState) } },
  },

  // ------------------------------------------------------------ Flocker v1: leases
  leases: {
    access: node('read'),
    method: 'GET',
    path: '/v1/configuration/leases',
    tag: 'leases',
    summary: 'Leases; expires is seconds remaining (null: never)',
    answers: { 200: { description: 'leases', schema: z.array(LeaseAnswer) } },
  },
  acquireLease: {
    access: node('own-lease'),
    method: 'POST',
    path: '/v1/configuration/leases',
    tag: 'leases',
    summary:
      'Take or renew a lease: while held, nothing moves the dataset away from the node or deletes it. As in Flocker, the dataset need not be in the configuration yet: the lease then applies to a dataset created later with that id. expires answers the seconds asked',
    body: LeaseBody,
    answers: {
      201: { description: 'new lease', schema: LeaseAnswer },
      200: { description: 'renewed', schema: LeaseAnswer },
      405: error('the dataset was deleted'),
      409: error('held by another node, or the dataset is moving'),
    },
  },
  releaseLease: {
    access: node('own-lease'),
    method: 'DELETE',
    path: '/v1/configuration/leases/:dataset_id',
    tag: 'leases',
    summary: 'Release a lease',
    params: DatasetParams,
    answers: { 200: { description: 'the released lease', schema: LeaseAnswer }, 404: error('no lease on this dataset') },
  },

  // ------------------------------------------------------------ drover: deploy, applications, migrations
  deploy: {
    access: USER,
    method: 'POST',
    path: '/v1/drover/deploy',
    tag: 'drover',
    summary: 'Deploy a project from a Compose (or Flocker) file and a topology file; dry_run shows the diff only',
    body: DeployBody,
    answers: {
      200: { description: 'what changed (or would)', schema: DeployAnswer },
      400: error('a file is refused: the message names the file, the service and the key'),
      409: error('a name, port or dataset belongs to another project, or a move is refused (lease)'),
    },
  },
  applications: {
    access: USER,
    method: 'GET',
    path: '/v1/drover/applications',
    tag: 'drover',
    summary: 'Every application: where it runs, its state, why it is not placed, its migration',
    answers: { 200: { description: 'statuses', schema: z.array(ApplicationStatus) } },
  },
  application: {
    access: USER,
    method: 'GET',
    path: '/v1/drover/applications/:name',
    tag: 'drover',
    summary: 'One application status',
    params: NameParams,
    answers: { 200: { description: 'status', schema: ApplicationStatus }, 404: error('no such application') },
  },
  applicationLogs: {
    access: USER,
    method: 'GET',
    path: '/v1/drover/applications/:name/logs',
    tag: 'drover',
    summary:
      "An application's container output, from the agent of the node it runs on now: newline-delimited JSON, one {stream: stdout|stderr, text} per line; the last `tail` lines (default all), and with follow=true each new one until the client goes",
    params: NameParams,
    query: z.object({ tail: z.coerce.number().int().min(0).max(100_000).optional(), follow: z.enum(['true', 'false']).optional() }).strict(),
    answers: {
      200: { description: 'the output, a JSON object per line', contentType: 'application/x-ndjson' },
      404: error('no such application'),
      409: error('no node runs it now (DROVER_APPLICATION_NOT_RUNNING)'),
      502: error("its node's agent serves no logs, or did not answer (DROVER_LOGS_UNAVAILABLE)"),
    },
  },
  moveApplication: {
    access: USER,
    method: 'POST',
    path: '/v1/drover/applications/:name/move',
    tag: 'drover',
    summary: 'Move an application with its data: 202 with the migration, 200 when it is already there',
    params: NameParams,
    body: MoveApplicationBody,
    answers: {
      202: { description: 'migration started (or joined)', schema: MoveApplicationAnswer },
      200: { description: 'nothing to move', schema: MoveApplicationAnswer },
      404: error('no such application or node'),
      409: error('leased elsewhere, or moving elsewhere; the source or target is silent (without force); force refused: the source reports, no replica, no copy on the target, or the data window is not accepted'),
    },
  },

  scaleApplication: {
    access: USER,
    method: 'PUT',
    path: '/v1/drover/applications/:name/instances',
    tag: 'drover',
    summary:
      'Set how many instances an application without a dataset runs (docs/DESIGN.md §30): more are placed, the newest go first after draining. A single application becomes one with instances. Changes nothing else; a later deploy sets the number its file gives',
    params: NameParams,
    body: ScaleApplicationBody,
    headers: IF_MATCHES,
    answers: {
      200: { description: 'its status now (instances being placed or drained)', schema: ApplicationStatus },
      400: error('a bad number, or an application that cannot have several (a dataset, mode global): the error names `instances`; nothing changed'),
      404: error('no such application'),
      412: error('the configuration changed'),
    },
  },

  // ------------------------------------------------------------ drover: continuous replication (docs/DESIGN.md §17)
  setDatasetReplication: {
    access: USER,
    method: 'PUT',
    path: '/v1/drover/datasets/:dataset_id/replication',
    tag: 'replication',
    summary: "Set a dataset's replication policy (null: stop replicating); the scheduler chooses its replicas. Changes nothing else",
    params: DatasetParams,
    body: ReplicationBody,
    headers: IF_MATCHES,
    answers: {
      200: { description: 'the dataset as stored now (with the replicas chosen)', schema: Dataset },
      400: error('bad policy: the errors name each field'),
      404: error('no such dataset'),
      405: error('the dataset was deleted'),
      412: error('the configuration changed'),
    },
  },
  createSecret: {
    access: USER,
    method: 'POST',
    path: '/v1/drover/secrets',
    tag: 'drover',
    summary: "Store a secret (sealed at rest) for an application's secret_environment or secret files; answers its id, never its value",
    body: CreateSecretBody,
    answers: { 201: { description: 'stored', schema: CreateSecretAnswer }, 400: error('not base64, or over 1 MiB') },
  },
  setApplicationReplication: {
    access: USER,
    method: 'PUT',
    path: '/v1/drover/applications/:name/replication',
    tag: 'replication',
    summary: "Set an application's replication policy (null: stop), applied to every dataset it mounts. Changes nothing else (no restart, no move)",
    params: NameParams,
    body: ReplicationBody,
    headers: IF_MATCHES,
    answers: {
      200: { description: 'the application as stored now', schema: Application },
      400: error('bad policy: the errors name each field'),
      404: error('no such application'),
      412: error('the configuration changed'),
    },
  },
  replication: {
    access: USER,
    method: 'GET',
    path: '/v1/drover/replication',
    tag: 'replication',
    summary: 'Every replicated dataset: its policy and, per replica, state, lag (seconds behind the primary), newest snapshot, bytes sent, last error, and why it is a problem',
    answers: { 200: { description: 'replication status', schema: z.array(ReplicationAnswer) } },
  },
  migrations: {
    access: node('read'),
    method: 'GET',
    path: '/v1/drover/migrations',
    tag: 'migrations',
    summary: 'Migrations, running and recent',
    answers: { 200: { description: 'migrations', schema: z.array(Migration) } },
  },
  startMigration: {
    access: USER,
    method: 'POST',
    path: '/v1/drover/migrations',
    tag: 'migrations',
    summary: 'Move an application with its data (the CLI form of the move): 201 with the migration',
    body: StartMigrationBody,
    answers: { 201: { description: 'migration started (or joined)', schema: Migration }, 404: error('no such application or node'), 409: error('already there, leased elsewhere, or moving elsewhere') },
  },
  migration: {
    access: node('migration-party'),
    method: 'GET',
    path: '/v1/drover/migrations/:id',
    tag: 'migrations',
    summary: 'One migration, with its phase and progress',
    params: z.object({ id: Uuid }),
    answers: { 200: { description: 'the migration', schema: Migration }, 404: error('no such migration') },
  },
  cancelMigration: {
    access: USER,
    method: 'POST',
    path: '/v1/drover/migrations/:id/cancel',
    tag: 'migrations',
    summary: 'Cancel a migration that has not handed off: it fails with "cancelled by the operator" and the application stays on (or returns to) its source',
    params: z.object({ id: Uuid }),
    answers: { 200: { description: 'the migration, failed', schema: Migration }, 404: error('no such migration'), 409: error('handed off or already ended: the message says which') },
  },
  events: {
    access: USER,
    method: 'GET',
    path: '/v1/drover/events',
    tag: 'drover',
    summary:
      'Server-sent events: `configuration` {version, tag}, `node` {uuid, host, state}, `migration` (the record), `replication` {dataset_id, replica, state, lag_seconds, problem}, `security`; each with `at`. Resumes after Last-Event-ID or `since` (0: every event still kept); `follow=false` ends the stream once those are sent',
    query: z
      .object({
        types: z.string().max(256).optional(),
        since: z.coerce.number().int().min(0).optional(),
        follow: z.enum(['true', 'false']).optional(),
      })
      .strict(),
    headers: { 'Last-Event-ID': 'resume after this event (while it is still in the ring); `since` wins when both are given' },
    answers: { 200: { description: 'an event stream', contentType: 'text/event-stream' } },
  },
  // ------------------------------------------------------------ the web dashboard (docs/DESIGN.md §26)
  dashboard: {
    access: USER,
    method: 'GET',
    path: '/ui',
    tag: 'dashboard',
    summary: "The web dashboard's page: nodes, applications, datasets, migrations and events, with move, drain, cordon and cancel (over the same mutual TLS as the API)",
    answers: { 200: { description: 'the page', contentType: 'text/html' } },
  },
  dashboardFile: {
    access: USER,
    method: 'GET',
    path: '/ui/:file',
    tag: 'dashboard',
    summary: "One of the dashboard's modules or its style sheet (preact and htm among them, served from this installation: nothing comes from elsewhere)",
    params: z.object({ file: z.string().regex(/^[a-z0-9-]+\.(js|css)$/, 'a file name such as main.js') }),
    answers: { 200: { description: 'the file', contentType: 'text/javascript' }, 404: error('no such file') },
  },
  backup: {
    access: USER,
    method: 'GET',
    path: '/v1/drover/backup',
    tag: 'drover',
    summary: 'The whole desired configuration, with the cluster it belongs to (the CA fingerprint), its version and tag: drover control backup',
    answers: { 200: { description: 'a backup', schema: Backup } },
  },
  restore: {
    access: USER,
    method: 'POST',
    path: '/v1/drover/restore',
    tag: 'drover',
    summary: "Replace the desired configuration with a backup's, in one change: refused whole, naming every bad field, when it does not validate, comes from another cluster (unless force), or would move a dataset's data back or delete a live one",
    body: RestoreBody,
    answers: {
      200: { description: 'restored', schema: RestoreAnswer },
      400: error('the backup does not validate or breaks a rule; every problem is named, nothing changed'),
      409: error('the backup is of another cluster (force restores it), or would move back or delete data the configuration has now; nothing changed'),
    },
  },
  openapi: {
    access: ANY,
    method: 'GET',
    path: '/v1/drover/openapi.json',
    tag: 'drover',
    summary: 'This document',
    answers: { 200: { description: 'OpenAPI 3.1', schema: z.record(z.string(), z.unknown()) } },
  },

  // ------------------------------------------------------------ the agent channel
  report: {
    access: node('own-report'),
    method: 'POST',
    path: '/v1/drover/agents/report',
    tag: 'channel',
    summary: "An agent's report: registers or refreshes its node and its observed state",
    body: NodeReport,
    answers: { 200: { description: "the version of the node's desired view", schema: ReportAnswer }, 400: error('bad report') },
  },
  replicationReport: {
    access: node('own-report'),
    method: 'POST',
    path: '/v1/drover/agents/replication',
    tag: 'channel',
    summary:
      "A primary's replication status alone, sent when a step ends or a pair's state changes (docs/DESIGN.md §38): replaces the node's replication status if `seq` is newer; the rest of the node's last report, and its lease, are untouched",
    body: ReplicationReport,
    answers: {
      200: { description: 'merged, or kept what was newer (`merged: false`)', schema: ReplicationReportAnswer },
      400: error('bad report'),
      403: error("rule own-report: the node certificate is not the report's node's"),
    },
  },
  desired: {
    access: node('own-view'),
    method: 'GET',
    path: '/v1/drover/agents/:node_uuid/desired',
    tag: 'channel',
    summary: "Long-poll of a node's desired configuration: answers when its version differs from `after`, or after `wait_ms`",
    params: z.object({ node_uuid: Uuid }),
    query: LongPollQuery,
    answers: { 200: { description: 'the part of the desired configuration that concerns the node', schema: AgentDesired } },
  },
  agentFile: {
    access: node('own-view'),
    method: 'GET',
    path: '/v1/drover/agents/:node_uuid/files/:id',
    tag: 'channel',
    summary: "A file's content (config, project file, or secret decrypted) for an application in the node's view; 404 for any other id",
    params: z.object({ node_uuid: Uuid, id: BlobId }),
    answers: { 200: { description: 'the content', schema: AgentFileAnswer }, 404: error('no application in this node\'s view refers to this content') },
  },
  routes: {
    access: node('route-table'),
    method: 'GET',
    path: '/v1/drover/routes',
    tag: 'channel',
    summary: 'Long-poll of the route table (proxies); `node_uuid` marks the proxy live for route acks',
    query: LongPollQuery.extend({ node_uuid: Uuid.optional() }),
    answers: { 200: { description: 'routes', schema: RouteTable } },
  },
  ackRoutes: {
    access: node('own-route-ack'),
    method: 'POST',
    path: '/v1/drover/routes/ack',
    tag: 'channel',
    summary: 'A proxy has applied a route table version',
    body: RouteAck,
    answers: { 200: { description: 'noted', schema: z.object({}) } },
  },
  routeAcks: {
    access: node('read'),
    method: 'GET',
    path: '/v1/drover/routes/acks',
    tag: 'channel',
    summary: 'Whether every live proxy has applied route table version `version` or newer (asked before a cutover stops the source)',
    query: z.object({ version: z.coerce.number().int().min(0) }).strict(),
    answers: { 200: { description: 'ack status', schema: RouteAcksAnswer } },
  },
  updateMigration: {
    access: node('migration-step'),
    method: 'POST',
    path: '/v1/drover/migrations/:id/update',
    tag: 'migrations',
    summary: "An agent's migration step: refused unless it carries the migration's generation, comes from the node whose turn it is, and follows the phase order",
    params: z.object({ id: Uuid }),
    body: MigrationUpdate,
    answers: { 200: { description: 'the migration after the step', schema: Migration }, 404: error('no such migration'), 409: error('stale generation, wrong node or illegal phase change') },
  },
} as const satisfies Record<string, RouteSpec>;

export type Routes = typeof ROUTES;
export type RouteKey = keyof Routes;

/** `/v1/configuration/datasets/:dataset_id` with `{dataset_id}` filled in (each value URI-encoded). */
export function fillPath(path: string, params: Record<string, unknown> = {}): string {
  return path.replace(/:([A-Za-z_]+)/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new TypeError(`path ${path} needs parameter "${name}"`);
    return encodeURIComponent(String(value));
  });
}

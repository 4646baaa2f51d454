/**
 * The one error class of drover (docs/DESIGN.md §11) and the one registry of its codes.
 *
 * Errors are classified once, where an outside library or command is called (the adapter);
 * everything above reads `code` and `retryable` and never parses messages.
 *
 * ERRORS is the registry, in the style of fastify's `createError(code, message, status)`:
 * for each code the HTTP status the control service answers with (500: not an API answer,
 * logged and answered with a generic 500 and an incident id), whether it is retryable by
 * default (a construction may say otherwise: the same code can be transient in one place
 * and not in another), and a default message. `generic` marks the code a client gives an
 * error answer of that status that names no code it knows.
 */

export interface ErrorSpec {
  /** The control service's HTTP status for this code; 500 means "unexpected here". */
  readonly status: number;
  /** Default of `DroverError.retryable` for this code. */
  readonly retryable: boolean;
  /** Default message, when a construction gives none. */
  readonly message: string;
  /** The code of an error answer with this status and no known code of its own. */
  readonly generic?: true;
}

export const ERRORS = {
  DROVER_ABORTED: { status: 500, retryable: false, message: 'aborted' },
  DROVER_AGENT_STOPPING: { status: 500, retryable: false, message: 'agent stopping' },
  DROVER_APPLICATION_NOT_FOUND: { status: 500, retryable: false, message: 'application not found' },
  DROVER_APPLICATION_NOT_RUNNING: { status: 409, retryable: true, message: 'no node runs the application now' },
  DROVER_BACKEND_LOST: { status: 500, retryable: true, message: 'the backend closed the connection before answering' },
  DROVER_BACKEND_UNREACHABLE: { status: 500, retryable: false, message: 'backend unreachable' },
  DROVER_BACKUP_CONFLICT: { status: 409, retryable: false, message: 'restoring the backup would move back or delete data the configuration has now' },
  DROVER_BACKUP_INVALID: { status: 400, retryable: false, message: 'the backup does not validate' },
  DROVER_BACKUP_OTHER_CLUSTER: { status: 409, retryable: false, message: 'the backup is of another cluster' },
  DROVER_BAD_CONFIG: { status: 400, retryable: false, message: 'bad config' },
  DROVER_BUSY: { status: 503, retryable: true, message: 'busy: another holder has the lock' },
  DROVER_CA_EXISTS: { status: 500, retryable: false, message: 'a cluster CA already exists in this directory' },
  DROVER_CA_MISSING: { status: 500, retryable: false, message: 'no cluster CA in this directory (drover ca init)' },
  DROVER_CA_UNKNOWN_CERTIFICATE: { status: 500, retryable: false, message: 'the CA issued no certificate of that name or serial' },
  DROVER_CLUSTER_BRIDGE_CLASH: { status: 500, retryable: false, message: 'cluster bridge clash' },
  DROVER_CLUSTER_CONFIG_INVALID: { status: 500, retryable: false, message: 'a rendered configuration does not pass its component schema' },
  DROVER_CLUSTER_DAEMON_FAILED: { status: 500, retryable: false, message: 'cluster daemon failed' },
  DROVER_CLUSTER_MISMATCH: { status: 500, retryable: false, message: 'the existing local cluster has another size, subnet or set of daemons' },
  DROVER_CLUSTER_NAME_INVALID: { status: 500, retryable: false, message: 'cluster name invalid' },
  DROVER_CLUSTER_NODES_INVALID: { status: 500, retryable: false, message: 'cluster nodes invalid' },
  DROVER_CLUSTER_CONTROLS_INVALID: { status: 500, retryable: false, message: 'cluster control services invalid' },
  DROVER_CLUSTER_NODE_UNKNOWN: { status: 500, retryable: false, message: 'the local cluster has no such node' },
  DROVER_CLUSTER_NOT_FOUND: { status: 500, retryable: false, message: 'no local cluster of that name is recorded' },
  DROVER_CLUSTER_NOT_ISOLATED: { status: 500, retryable: false, message: 'the local cluster was brought up without isolated nodes' },
  DROVER_CLUSTER_PORT_IN_USE: { status: 500, retryable: false, message: 'cluster port in use' },
  DROVER_CLUSTER_ROOT_INVALID: { status: 500, retryable: false, message: 'cluster root invalid' },
  DROVER_CLUSTER_STATE_INVALID: { status: 500, retryable: false, message: 'cluster state invalid' },
  DROVER_CLUSTER_SUBNET_INVALID: { status: 500, retryable: false, message: 'cluster subnet invalid' },
  DROVER_CLUSTER_SUBNET_IN_USE: { status: 500, retryable: false, message: 'cluster subnet in use' },
  DROVER_COMMAND_FAILED: { status: 500, retryable: false, message: 'command failed' },
  DROVER_COMMAND_NOT_FOUND: { status: 500, retryable: false, message: 'command not found' },
  DROVER_COMMAND_TIMEOUT: { status: 500, retryable: true, message: 'command timeout' },
  DROVER_CONFIGURATION_CHANGED: { status: 412, retryable: false, message: 'the configuration changed', generic: true },
  DROVER_CONFIG_INVALID: { status: 500, retryable: false, message: 'config invalid' },
  DROVER_CONFLICT: { status: 409, retryable: false, message: 'conflicting change', generic: true },
  DROVER_CONTAINER_NAME_IN_USE: { status: 409, retryable: false, message: 'container name in use' },
  DROVER_CONTAINER_NOT_FOUND: { status: 404, retryable: false, message: 'container not found' },
  DROVER_CONTROL_BAD_ANSWER: { status: 500, retryable: true, message: 'the control service answered what its API does not allow' },
  DROVER_CONTROL_CONFLICT: { status: 500, retryable: true, message: 'the control service refused a conflicting change' },
  DROVER_CONTROL_ERROR: { status: 500, retryable: false, message: 'the control service failed' },
  DROVER_CONTROL_HTTP: { status: 500, retryable: false, message: 'the control service answered with an error' },
  DROVER_CONTROL_NOT_FOUND: { status: 500, retryable: false, message: 'the control service does not know it' },
  DROVER_CONTROL_REDIRECT_REFUSED: { status: 500, retryable: false, message: 'a control service redirected to a host outside the configured list' },
  DROVER_CONTROL_UNREACHABLE: { status: 500, retryable: false, message: 'the control service did not answer' },
  DROVER_DATA_LOSS_NOT_ACCEPTED: { status: 409, retryable: false, message: 'a forced move would lose more data than the threshold; name the window to accept it' },
  DROVER_DATASET_ATTACHED: { status: 409, retryable: false, message: 'dataset attached' },
  DROVER_DATASET_DELETED: { status: 405, retryable: false, message: 'dataset deleted' },
  DROVER_DATASET_ID_IN_USE: { status: 409, retryable: false, message: 'dataset id in use' },
  DROVER_DATASET_IN_USE: { status: 409, retryable: false, message: 'dataset in use' },
  DROVER_DATASET_NOT_FOUND: { status: 404, retryable: false, message: 'dataset not found' },
  DROVER_DATASET_ON_OTHER_NODE: { status: 409, retryable: false, message: 'dataset on other node' },
  DROVER_DEMO_LOST_WRITES: { status: 500, retryable: false, message: 'demo lost writes' },
  DROVER_DEMO_NO_PORT: { status: 500, retryable: false, message: 'demo no port' },
  DROVER_DOCKER_CONFLICT: { status: 500, retryable: true, message: 'docker conflict' },
  DROVER_DOCKER_FAILED: { status: 500, retryable: false, message: 'docker failed' },
  DROVER_DOCKER_IMAGE_UNAVAILABLE: { status: 500, retryable: true, message: 'docker image unavailable' },
  DROVER_DOCKER_NOT_FOUND: { status: 500, retryable: false, message: 'docker not found' },
  DROVER_DOCKER_UNAVAILABLE: { status: 500, retryable: false, message: 'docker unavailable' },
  DROVER_ENGINE_UNAVAILABLE: { status: 500, retryable: false, message: 'engine unavailable' },
  DROVER_ERA_NOT_FOUND: { status: 404, retryable: false, message: 'era not found' },
  DROVER_ETCD_COMPACTED: { status: 500, retryable: true, message: 'the etcd revision asked for was compacted' },
  DROVER_ETCD_LEASE_LOST: { status: 503, retryable: true, message: 'an etcd lease expired' },
  DROVER_ETCD_UNAVAILABLE: { status: 503, retryable: true, message: 'etcd did not answer' },
  DROVER_EXEC_TIMEOUT: { status: 500, retryable: false, message: 'exec timeout' },
  DROVER_FORBIDDEN: { status: 403, retryable: false, message: 'forbidden: the caller\'s certificate does not allow this', generic: true },
  DROVER_FILE_NOT_FOUND: { status: 404, retryable: false, message: 'no file content with that id is stored for this node' },
  DROVER_FORCE_REFUSED: { status: 409, retryable: false, message: 'a forced move is refused' },
  DROVER_HOST_KEY_MISMATCH: { status: 409, retryable: false, message: 'the fingerprint given is not the host key the node reports' },
  DROVER_HOST_KEY_UNCHANGED: { status: 409, retryable: false, message: 'no new host key to accept' },
  DROVER_IMAGE_BUILD_TIMEOUT: { status: 500, retryable: false, message: 'image build timeout' },
  DROVER_IMAGE_NO_APT_SOURCES: { status: 500, retryable: false, message: 'image no apt sources' },
  DROVER_INTERNAL: { status: 500, retryable: false, message: 'unexpected internal error' },
  DROVER_INVALID_CONFIGURATION: { status: 400, retryable: false, message: 'invalid configuration' },
  DROVER_INVALID_NAME: { status: 500, retryable: false, message: 'invalid name' },
  DROVER_INVALID_REQUEST: { status: 400, retryable: false, message: 'invalid request', generic: true },
  DROVER_LEASE_HELD: { status: 409, retryable: false, message: 'lease held' },
  DROVER_LEASE_NOT_FOUND: { status: 404, retryable: false, message: 'lease not found' },
  DROVER_LINK_ALIAS_IN_USE: { status: 409, retryable: false, message: 'link alias in use' },
  DROVER_LINK_PORT_IN_USE: { status: 409, retryable: false, message: 'link port in use' },
  DROVER_LISTEN_FAILED: { status: 500, retryable: false, message: 'listen failed' },
  DROVER_LOCAL_ROUTE_FAILED: { status: 500, retryable: false, message: 'local route failed' },
  DROVER_LOGS_UNAVAILABLE: { status: 502, retryable: true, message: "the application's node does not serve its logs now" },
  DROVER_MIGRATION_ACTIVE: { status: 409, retryable: false, message: 'migration active' },
  DROVER_MIGRATION_BAD_TRANSITION: { status: 409, retryable: false, message: 'migration bad transition' },
  DROVER_MIGRATION_FAILED: { status: 500, retryable: false, message: 'migration failed' },
  DROVER_MIGRATION_NOT_FOUND: { status: 404, retryable: false, message: 'migration not found' },
  DROVER_MIGRATION_NO_TRANSPORT: { status: 500, retryable: false, message: 'migration no transport' },
  DROVER_MIGRATION_STALE_GENERATION: { status: 409, retryable: false, message: 'migration stale generation' },
  DROVER_MIGRATION_STEP_REFUSED: { status: 500, retryable: false, message: 'migration step refused' },
  DROVER_MIGRATION_UNANSWERED: { status: 500, retryable: false, message: 'migration unanswered' },
  DROVER_MIGRATION_WRONG_NODE: { status: 409, retryable: false, message: 'migration wrong node' },
  DROVER_NAT_FAILED: { status: 500, retryable: true, message: 'nat failed' },
  DROVER_NODE_IDENTITY_MISMATCH: { status: 403, retryable: false, message: 'the node certificate is bound to another node' },
  DROVER_NODE_NOT_FOUND: { status: 404, retryable: false, message: 'node not found' },
  DROVER_NODE_SILENT: { status: 409, retryable: false, message: 'node silent' },
  DROVER_NOT_LEADER: { status: 503, retryable: true, message: 'this control service is not the leader; writes go to the leader' },
  DROVER_NOTHING_TO_MOVE: { status: 409, retryable: false, message: 'nothing to move' },
  DROVER_NO_LEADER: { status: 503, retryable: true, message: 'no control service is leader right now; try again in a few seconds' },
  DROVER_NOT_ALLOWED: { status: 405, retryable: false, message: 'method not allowed', generic: true },
  DROVER_NOT_FOUND: { status: 404, retryable: false, message: 'not found', generic: true },
  DROVER_PLUGIN_BAD_NAME: { status: 500, retryable: false, message: 'plugin bad name' },
  DROVER_PLUGIN_SOCKET_TAKEN: { status: 500, retryable: false, message: 'plugin socket taken' },
  DROVER_PLUGIN_STOPPING: { status: 500, retryable: true, message: 'plugin stopping' },
  DROVER_PORT_IN_USE: { status: 409, retryable: false, message: 'port in use' },
  DROVER_PROJECT_NOT_FOUND: { status: 500, retryable: false, message: 'no application or dataset belongs to that project' },
  DROVER_PROJECT_REMOVE_FAILED: { status: 500, retryable: false, message: 'a part of the project could not be removed' },
  DROVER_SECRET_KEY_INVALID: { status: 500, retryable: false, message: 'the secrets key file is not a drover key' },
  DROVER_SECRET_KEY_MISMATCH: { status: 500, retryable: false, message: 'the secrets key is not the one the other control services use' },
  DROVER_SECRET_UNREADABLE: { status: 500, retryable: false, message: 'a secret could not be decrypted: wrong key, or the sealed copy is damaged' },
  DROVER_SSH_CONNECT_FAILED: { status: 500, retryable: false, message: 'ssh connect failed' },
  DROVER_SSH_DISCONNECTED: { status: 500, retryable: true, message: 'ssh disconnected' },
  DROVER_SSH_HOST_KEY_MISMATCH: { status: 500, retryable: false, message: 'ssh host key mismatch' },
  DROVER_SSH_KEY_INVALID: { status: 500, retryable: false, message: 'ssh key invalid' },
  DROVER_SSH_PROTOCOL: { status: 500, retryable: false, message: 'ssh protocol' },
  DROVER_SSH_RECEIVE_REFUSED: { status: 500, retryable: false, message: "drover-receive refused a request outside drover's verbs or namespace" },
  DROVER_SSH_TIMEOUT: { status: 500, retryable: true, message: 'ssh timeout' },
  DROVER_STATE_CORRUPT: { status: 500, retryable: false, message: 'state corrupt' },
  DROVER_STATE_UNREADABLE: { status: 500, retryable: false, message: 'state unreadable' },
  DROVER_STATE_WRITE_FAILED: { status: 500, retryable: true, message: 'state write failed' },
  DROVER_STORE_CLOSED: { status: 503, retryable: true, message: 'store closed' },
  DROVER_STORE_CONFLICT: { status: 409, retryable: true, message: 'another control service changed the configuration first' },
  DROVER_STORE_CORRUPT: { status: 500, retryable: false, message: 'store corrupt' },
  DROVER_STORE_FORMAT: { status: 500, retryable: false, message: 'store format' },
  DROVER_STORE_LOCKED: { status: 500, retryable: false, message: 'store locked' },
  DROVER_STORE_NOT_LOADED: { status: 500, retryable: false, message: 'store not loaded' },
  DROVER_STORE_READ_FAILED: { status: 500, retryable: false, message: 'store read failed' },
  DROVER_STORE_WRITE_FAILED: { status: 503, retryable: true, message: 'store write failed' },
  DROVER_TIMEOUT: { status: 500, retryable: false, message: 'timeout' },
  DROVER_TLS_CERT_FAILED: { status: 500, retryable: false, message: 'tls cert failed' },
  DROVER_TLS_CONNECT_FAILED: { status: 500, retryable: false, message: 'tls connect failed' },
  DROVER_TLS_REJECTED: { status: 500, retryable: false, message: 'tls rejected' },
  DROVER_TOO_LARGE: { status: 413, retryable: false, message: 'request body too large', generic: true },
  DROVER_TRANSFER_ABORTED: { status: 500, retryable: false, message: 'transfer aborted' },
  DROVER_TRANSFER_BUSY: { status: 500, retryable: true, message: 'transfer busy' },
  DROVER_TRANSFER_CONNECT_FAILED: { status: 500, retryable: true, message: 'transfer connect failed' },
  DROVER_TRANSFER_INTEGRITY: { status: 500, retryable: false, message: 'transfer integrity' },
  DROVER_TRANSFER_INTERRUPTED: { status: 500, retryable: true, message: 'transfer interrupted' },
  DROVER_TRANSFER_JOURNAL_CORRUPT: { status: 500, retryable: false, message: 'transfer journal corrupt' },
  DROVER_TRANSFER_NO_SNAPSHOT: { status: 500, retryable: false, message: 'transfer no snapshot' },
  DROVER_TRANSFER_PROTOCOL: { status: 500, retryable: false, message: 'transfer protocol' },
  DROVER_TRANSFER_STALLED: { status: 500, retryable: true, message: 'transfer stalled' },
  DROVER_TRANSFER_STEP_ENDED: { status: 500, retryable: false, message: 'transfer step ended' },
  DROVER_TRANSFER_TARGET_WRITABLE: { status: 500, retryable: false, message: 'transfer target writable' },
  DROVER_TRANSFER_VERIFY_FAILED: { status: 500, retryable: true, message: 'transfer verify failed' },
  DROVER_UNAVAILABLE: { status: 500, retryable: false, message: 'unavailable' },
  DROVER_USAGE: { status: 500, retryable: false, message: 'bad command line' },
  DROVER_VOLUME_BAD_OPTION: { status: 500, retryable: false, message: 'volume bad option' },
  DROVER_VOLUME_IN_USE: { status: 500, retryable: false, message: 'volume in use' },
  DROVER_VOLUME_MOVE_FAILED: { status: 500, retryable: false, message: 'volume move failed' },
  DROVER_VOLUME_MOVE_REFUSED: { status: 500, retryable: false, message: 'volume move refused' },
  DROVER_VOLUME_MOVING_AWAY: { status: 500, retryable: false, message: 'volume moving away' },
  DROVER_VOLUME_NOT_FOUND: { status: 500, retryable: false, message: 'volume not found' },
  DROVER_VOLUME_NOT_HERE: { status: 500, retryable: false, message: 'volume not here' },
  DROVER_VOLUME_NOT_READY: { status: 500, retryable: true, message: 'volume not ready' },
  DROVER_WORKER_FAILED: { status: 500, retryable: true, message: 'worker failed' },
  DROVER_ZFS_ALREADY_MOUNTED: { status: 500, retryable: false, message: 'zfs already mounted' },
  DROVER_ZFS_BAD_OUTPUT: { status: 500, retryable: false, message: 'zfs bad output' },
  DROVER_ZFS_BUSY: { status: 500, retryable: false, message: 'zfs busy' },
  DROVER_ZFS_COMMAND_FAILED: { status: 500, retryable: false, message: 'zfs command failed' },
  DROVER_ZFS_DIVERGED: { status: 500, retryable: false, message: 'zfs diverged' },
  DROVER_ZFS_EXISTS: { status: 500, retryable: false, message: 'zfs exists' },
  DROVER_ZFS_HOLD_EXISTS: { status: 500, retryable: false, message: 'zfs hold exists' },
  DROVER_ZFS_INTERRUPTED: { status: 500, retryable: true, message: 'zfs interrupted' },
  DROVER_ZFS_INVALID_NAME: { status: 500, retryable: false, message: 'zfs invalid name' },
  DROVER_ZFS_INVALID_SIZE: { status: 500, retryable: false, message: 'zfs invalid size' },
  DROVER_ZFS_NOT_FOUND: { status: 500, retryable: false, message: 'zfs not found' },
  DROVER_ZFS_NOT_MOUNTED: { status: 500, retryable: false, message: 'zfs not mounted' },
  DROVER_ZFS_NO_COMMON_SNAPSHOT: { status: 500, retryable: false, message: 'zfs no common snapshot' },
  DROVER_ZFS_NO_SPACE: { status: 500, retryable: false, message: 'zfs no space' },
  DROVER_ZFS_NO_SUCH_TAG: { status: 500, retryable: false, message: 'zfs no such tag' },
  DROVER_ZFS_POOL_NOT_FOUND: { status: 500, retryable: false, message: 'zfs pool not found' },
  DROVER_ZFS_READONLY: { status: 500, retryable: false, message: 'zfs readonly' },
  DROVER_ZFS_RESUME_STATE: { status: 500, retryable: true, message: 'zfs resume state' },
  DROVER_ZFS_ROLLBACK_BLOCKED: { status: 500, retryable: false, message: 'zfs rollback blocked' },
  DROVER_ZFS_STREAM_INTERRUPTED: { status: 500, retryable: true, message: 'zfs stream interrupted' },
  DROVER_ZFS_TARGET_EXISTS: { status: 500, retryable: false, message: 'zfs target exists' },
  DROVER_ZFS_UNSUPPORTED: { status: 500, retryable: false, message: 'zfs unsupported' },
} as const satisfies Record<`DROVER_${string}`, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export interface DroverErrorOptions {
  /** True when the same call may succeed later (EBUSY, a cut connection, a timeout). Default: the registry's. */
  retryable?: boolean;
  /** Structured facts for logs and API bodies: names, paths, exit codes. Never secrets. */
  detail?: Record<string, unknown>;
  cause?: unknown;
}

export class DroverError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly detail: Record<string, unknown>;

  /** `message` defaults to the registry's message of `code`, `options.retryable` to its retryability. */
  constructor(code: ErrorCode, message?: string, options: DroverErrorOptions = {}) {
    const spec: ErrorSpec = ERRORS[code];
    super(message ?? spec.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DroverError';
    this.code = code;
    this.retryable = options.retryable ?? spec.retryable;
    this.detail = options.detail ?? {};
  }

  toJSON(): { code: ErrorCode; message: string; retryable: boolean; detail: Record<string, unknown> } {
    return { code: this.code, message: this.message, retryable: this.retryable, detail: this.detail };
  }
}

export function isDroverError(err: unknown, code?: ErrorCode): err is DroverError {
  return err instanceof DroverError && (code === undefined || err.code === code);
}

/** Whether `code` is in the registry (e.g. a code read from the wire). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** The HTTP status the control service answers `code` with. */
export function statusOf(code: ErrorCode): number {
  return (ERRORS[code] as ErrorSpec).status;
}

/**
 * The code of an error answer: its own `code` when the registry knows it, else the generic
 * code of its status, else DROVER_CONTROL_ERROR (5xx) or DROVER_CONTROL_HTTP.
 */
export function codeOfAnswer(status: number, code: unknown): ErrorCode {
  if (isErrorCode(code)) return code;
  for (const [name, spec] of Object.entries(ERRORS) as [ErrorCode, ErrorSpec][]) if (spec.generic && spec.status === status) return name;
  return status >= 500 ? 'DROVER_CONTROL_ERROR' : 'DROVER_CONTROL_HTTP';
}

/** Wraps anything thrown into a DroverError, keeping an existing one as it is. */
export function toDroverError(err: unknown, code: ErrorCode = 'DROVER_INTERNAL'): DroverError {
  if (err instanceof DroverError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new DroverError(code, message, { cause: err });
}

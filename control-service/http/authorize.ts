/**
 * Authorization (docs/DESIGN.md §23): who may call a route, from the role in the caller's
 * certificate and the route's `access` in the one route table (common/api-routes.ts). A
 * user may call every route; a node only the routes whose access names a node rule, and
 * there only for itself — each rule is one function below, reading the request and the
 * desired configuration. Refusals are 403 DROVER_FORBIDDEN naming the route and the rule.
 * Pure: the caller passes the document and the node's uuid.
 *
 * The node's uuid is the one its certificate's name was bound to when it first reported
 * (control.ts `report`); a node certificate that never reported is bound to nothing and may
 * only read, report (which binds it) and call `any` routes.
 */
import { ROUTES, type NodeRule, type RouteKey } from '#common/api-routes.ts';
import { DroverError } from '#common/errors.ts';
import type { Identity } from '#common/identity.ts';
import type { Desired } from '#common/model.ts';
import { indexOf } from '../desired/desired-index.ts';

export interface AccessRequest {
  params: unknown;
  query: unknown;
  /** Parsed, except for a raw-body route (the report), whose rule is checked where it is parsed. */
  body: unknown;
}

/** A caller that presented no certificate: only a control service listening plain on loopback has them. */
export const PLAIN_LOOPBACK: Identity = { role: 'user', name: 'plain-loopback' };

function forbidden(key: RouteKey, identity: Identity, rule: string, why: string): DroverError {
  const { method, path } = ROUTES[key];
  return new DroverError('DROVER_FORBIDDEN', `${method} ${path} is refused to node '${identity.name}': rule ${rule}: ${why}.`, {
    detail: { route: key, role: identity.role, name: identity.name, rule },
  });
}

const field = (value: unknown, name: string): unknown => (value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[name] : undefined);

/**
 * Throws 403 unless `identity` may call route `key` with this input.
 * @param self the uuid the node certificate is bound to (undefined: none yet)
 * @throws DroverError DROVER_FORBIDDEN (403), naming the rule
 */
export function authorize(key: RouteKey, identity: Identity, input: AccessRequest, desired: Desired, self: string | undefined): void {
  if (identity.role === 'user') return;
  const access = ROUTES[key].access;
  if (access.role === 'any') return;
  if (access.role === 'user') throw forbidden(key, identity, 'user-only', 'only a user certificate may call it');
  const why = NODE_RULES[access.rule](input, desired, self);
  if (why !== null) throw forbidden(key, identity, access.rule, why);
}

type Check = (input: AccessRequest, desired: Desired, self: string | undefined) => string | null;

const NOT_BOUND = 'this node certificate has not reported yet, so it is no node of the cluster';

/** `uuid` must be the node's own. */
function own(uuid: unknown, self: string | undefined, what: string): string | null {
  if (self === undefined) return NOT_BOUND;
  return uuid === self ? null : `${what} ${String(uuid)} is not this node (${self})`;
}

function party(id: unknown, desired: Desired, self: string | undefined): string | null {
  if (self === undefined) return NOT_BOUND;
  const migration = typeof id === 'string' ? indexOf(desired).migrations.get(id) : undefined;
  // An unknown migration: the handler answers 404, as it would to anyone.
  if (migration === undefined) return null;
  return migration.from === self || migration.to === self ? null : `migration ${String(id)} moves from ${migration.from} to ${migration.to}; this node (${self}) is no party to it`;
}

export const NODE_RULES: Record<NodeRule, Check> = {
  read: () => null,
  // Checked in Control.report, where the raw body is parsed (the uuid is inside it).
  'own-report': () => null,
  'own-view': (input, _d, self) => own(field(input.params, 'node_uuid'), self, 'the view of node'),
  'route-table': (input, _d, self) => {
    const uuid = field(input.query, 'node_uuid');
    return uuid === undefined ? null : own(uuid, self, 'node_uuid');
  },
  'own-route-ack': (input, _d, self) => own(field(input.body, 'node_uuid'), self, 'node_uuid'),
  'own-lease': (input, desired, self) => {
    const bodyNode = field(input.body, 'node_uuid');
    if (bodyNode !== undefined) return own(bodyNode, self, 'a lease for node');
    if (self === undefined) return NOT_BOUND;
    const id = field(input.params, 'dataset_id');
    const lease = typeof id === 'string' ? indexOf(desired).leases.get(id) : undefined;
    return lease === undefined || lease.node_uuid === self ? null : `the lease on ${String(id)} is held by node ${lease.node_uuid}, not this node (${self})`;
  },
  'dataset-on-itself': (input, desired, self) => {
    if (self === undefined) return NOT_BOUND;
    const primary = field(input.body, 'primary');
    const id = field(input.params, 'dataset_id');
    if (id === undefined || primary !== undefined) return own(primary, self, 'primary');
    // A delete: the dataset must be this node's (or be unknown: the handler's 404).
    const dataset = typeof id === 'string' ? indexOf(desired).datasets.get(id) : undefined;
    return dataset === undefined || dataset.primary === self ? null : `dataset ${String(id)} has its primary on node ${dataset.primary}, not this node (${self})`;
  },
  'migration-party': (input, desired, self) => party(field(input.params, 'id'), desired, self),
  'migration-step': (input, desired, self) => own(field(input.body, 'node_uuid'), self, 'a step posted as node') ?? party(field(input.params, 'id'), desired, self),
};

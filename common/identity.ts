/**
 * Who is calling the control service, read from the client certificate (docs/DESIGN.md §23):
 * the role is the subject's O, the name its CN. Flocker named roles by CN prefix
 * (`node-<uuid>`, `user-<name>`); drover keeps the name free and puts the role beside it.
 * Pure.
 */

/** The subject O of each role's certificates. */
export const ROLE_ORGANIZATION = {
  user: 'drover-user',
  node: 'drover-node',
  control: 'drover-control',
  /** May scrape /metrics (docs/DESIGN.md §25) and nothing else: no API route takes it. */
  metrics: 'drover-metrics',
} as const;

export type Role = keyof typeof ROLE_ORGANIZATION;

/** A caller the control service knows: a user (the whole API) or a node (its own things only). */
export interface Identity {
  role: 'user' | 'node';
  /** The certificate's CN: the user's or the node's name. */
  name: string;
}

/** Names usable in a certificate's CN: what `drover ca node|user` accepts. */
export const CERT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * The identity a verified client certificate's subject carries; null for a certificate of
 * no client role (the control service's own, or one from outside drover's CA).
 */
export function identityOfSubject(subject: { O?: string | string[]; CN?: string | string[] } | undefined): Identity | null {
  if (subject === undefined) return null;
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v);
  const organization = first(subject.O);
  const name = first(subject.CN);
  if (name === undefined || !CERT_NAME.test(name)) return null;
  if (organization === ROLE_ORGANIZATION.user) return { role: 'user', name };
  if (organization === ROLE_ORGANIZATION.node) return { role: 'node', name };
  return null;
}

/**
 * Whether a verified client certificate's subject may scrape a drover process's /metrics
 * (docs/DESIGN.md §25): a user's (`drover-user`) or a scraper's (`drover-metrics`). Pure.
 */
export function mayScrapeMetrics(subject: { O?: string | string[]; CN?: string | string[] } | undefined): boolean {
  const organization = Array.isArray(subject?.O) ? (subject.O.length === 1 ? subject.O[0] : undefined) : subject?.O;
  const name = Array.isArray(subject?.CN) ? (subject.CN.length === 1 ? subject.CN[0] : undefined) : subject?.CN;
  return name !== undefined && CERT_NAME.test(name) && (organization === ROLE_ORGANIZATION.user || organization === ROLE_ORGANIZATION.metrics);
}

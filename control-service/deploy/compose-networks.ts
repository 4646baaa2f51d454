/**
 * Compose networks as drover reads them (docs/DESIGN.md §21): a network is a **name scope**.
 * drover creates no Docker network; a project's services that share a network resolve each
 * other's names (and aliases there) to their addresses on the node's proxy, which follows each
 * service wherever it runs. Services on disjoint networks do not resolve each other. A service
 * without `networks:` is on the project's `default` network. Pure.
 */
import { z } from 'zod';
import { NetworkName } from '#common/model.ts';
import type { Scope } from './scope.ts';

const OWN_ADDRESSES = 'drover gives each service its address itself (one per service, on every node\'s proxy; docs/DESIGN.md §21)';

/** Why some network keys are refused. */
const NETWORK_REASONS: Record<string, string> = {
  external: 'drover resolves names within one project; a network made outside it has no services drover knows — put the services in this file',
  internal: 'drover does not restrict a container\'s outbound traffic; drop "internal"',
  ipam: OWN_ADDRESSES,
  enable_ipv6: 'drover\'s names resolve to IPv4 addresses',
  driver_opts: 'drover creates no Docker network, so there is nothing to pass options to',
};

/** Read and of no further effect (drover creates no Docker network); documented in the README. */
const TopNetwork = z
  .object({
    driver: z.enum(['bridge', 'overlay'], { error: 'drover\'s networks are name scopes that span nodes: "bridge" or "overlay" (or leave it out)' }).optional(),
    name: z.string().optional(),
    attachable: z.boolean().optional(),
    labels: z.union([z.record(z.string(), z.unknown()), z.array(z.string())]).optional(),
  })
  .strict();

/** The top-level `networks:` → the declared names (`default` is always there). */
export function readTopNetworks(scope: Scope, value: unknown): Set<string> {
  const declared = new Set(['default']);
  if (value === undefined || value === null) return declared;
  const record = scope.shape(['networks'], z.record(z.string(), z.unknown()), value);
  for (const [name, spec] of Object.entries(record)) {
    scope.attempt(() => {
      if (!NetworkName.safeParse(name).success) scope.failKey(['networks', name], `"${name}" is not a network name (a letter or digit, then letters, digits, "_", "." or "-")`);
      declared.add(name); // a bad declaration is named once, not again at every service on it
      if (spec !== null) scope.shape(['networks', name], TopNetwork, spec, NETWORK_REASONS);
    }, undefined);
  }
  return declared;
}

const ServiceNetwork = z
  .object({ aliases: z.array(NetworkName).optional() })
  .strict()
  .nullable();

const SERVICE_NETWORK_REASONS: Record<string, string> = {
  ipv4_address: OWN_ADDRESSES,
  ipv6_address: OWN_ADDRESSES,
  link_local_ips: OWN_ADDRESSES,
  mac_address: OWN_ADDRESSES,
  priority: 'drover attaches no network interfaces, so there is no order to choose',
  gw_priority: 'drover attaches no network interfaces, so there is no gateway to choose',
  driver_opts: 'drover creates no Docker network, so there is nothing to pass options to',
};

/** A service's `networks:` (list, or mapping with `aliases`) → network → aliases. */
export function readServiceNetworks(scope: Scope, value: unknown, declared: ReadonlySet<string>): Record<string, string[]> {
  const entries: [string, unknown, PropertyKey[]][] = Array.isArray(value)
    ? scope.shape(['networks'], z.array(z.string()), value).map((name, i) => [name, null, ['networks', i]])
    : Object.entries(scope.shape(['networks'], z.record(z.string(), z.unknown(), { error: 'must be a list of networks or a mapping' }), value)).map(([name, v]) => [name, v, ['networks', name]]);
  const out: Record<string, string[]> = {};
  for (const [name, raw, key] of entries) {
    scope.attempt(() => {
      if (!declared.has(name)) scope.failKey(key, `network "${name}" is not declared under the top-level "networks:"`);
      const spec = scope.shape(key, ServiceNetwork, raw, SERVICE_NETWORK_REASONS);
      out[name] = spec?.aliases ?? [];
    }, undefined);
  }
  if (entries.length === 0) scope.failKey(['networks'], 'names no network; leave "networks:" out for the default one');
  return out;
}

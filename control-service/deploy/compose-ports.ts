import { z } from 'zod';
import { externalKey } from '#common/model.ts';
import type { Scope } from './scope.ts';

export type Mapping = { internal: number; external: number; protocol?: 'udp'; host_ip?: string };
export type Exposed = { internal: number; protocol?: 'udp' };

const PortLong = z
  .object({
    target: z.number().int().min(1).max(65535),
    published: z.union([z.string(), z.number().int()]).optional(),
    host_ip: z.string().optional(),
    protocol: z.enum(['tcp', 'udp']).optional(),
    mode: z.enum(['ingress', 'host']).optional(),
    name: z.string().optional(),
    app_protocol: z.string().optional(),
  })
  .strict();

const NEEDS_PUBLISHED = 'needs a published port ("8080:80"): drover publishes each port at the same number on every node; to reach it from the project\'s services by name only, list it under "expose:"';
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const HOST_IP = 'is not an IPv4 address: a host address must be one of the node\'s IPv4 addresses ("127.0.0.1:8080:80")';

/**
 * Reads Compose `ports:` in both syntaxes into published ports. Short:
 * `[HOST_IP:]PUBLISHED:TARGET[/tcp|/udp]`, ranges allowed (`"8000-8001:8000-8001"`). Long:
 * `{target, published, host_ip, protocol, mode, name, app_protocol}`. A host address makes
 * every node's proxy listen on that address only (`0.0.0.0` is the same as none); UDP is
 * relayed per client address (docs/DESIGN.md §21). Refused: a container-only port (Compose
 * would pick a random host port; drover's proxies need a fixed one — `expose:` reaches it by
 * name), IPv6 host addresses, SCTP.
 */
export function readPorts(scope: Scope, value: unknown): Mapping[] {
  const list = scope.shape(['ports'], z.array(z.unknown()), value);
  const out: Mapping[] = [];
  // Each entry on its own: one bad port does not hide the next one's problem.
  list.forEach((entry, i) =>
    scope.attempt(() => {
      const key = ['ports', i];
      if (typeof entry === 'string') out.push(...readShort(scope, key, entry));
      else if (typeof entry === 'number') scope.failKey(key, `port ${entry} ${NEEDS_PUBLISHED}`);
      else {
        const long = scope.shape(key, PortLong, entry);
        if (long.published === undefined) scope.failKey(key, `port ${long.target} ${NEEDS_PUBLISHED}`);
        const published = typeof long.published === 'number' ? long.published : parsePort(long.published);
        if (published === null) scope.failKey([...key, 'published'], `"${long.published}" is not a port number (1-65535)`);
        if (long.host_ip !== undefined && !IPV4.test(long.host_ip)) scope.failKey([...key, 'host_ip'], `"${long.host_ip}" ${HOST_IP}`);
        out.push(mapping(long.target, published, long.protocol === 'udp', long.host_ip));
      }
    }, undefined),
  );
  const seen = new Set<string>();
  out.forEach((p) => {
    if (seen.has(externalKey(p))) scope.failKey(['ports'], `published port ${externalKey(p)} appears more than once`);
    seen.add(externalKey(p));
  });
  return out;
}

/** Compose `expose:` (`"5432"`, `"8000-8010"`, `"53/udp"`, numbers): container ports reached by name only. */
export function readExpose(scope: Scope, value: unknown): Exposed[] {
  const list = scope.shape(['expose'], z.array(z.union([z.string(), z.number().int()])), value);
  const out: Exposed[] = [];
  list.forEach((entry, i) =>
    scope.attempt(() => {
      const key = ['expose', i];
      const { spec, udp } = splitProtocol(scope, key, String(entry));
      const ports = parseRange(spec);
      if (ports === null) scope.failKey(key, `"${entry}" is not a container port or range (1-65535, e.g. "5432" or "8000-8010")`);
      for (const internal of ports) if (!out.some((p) => p.internal === internal && (p.protocol === 'udp') === udp)) out.push(udp ? { internal, protocol: 'udp' } : { internal });
    }, undefined),
  );
  return out;
}

function mapping(internal: number, external: number, udp: boolean, hostIp: string | undefined): Mapping {
  return {
    internal,
    external,
    ...(udp ? { protocol: 'udp' as const } : {}),
    // 0.0.0.0 is every address, which in drover is the node's own.
    ...(hostIp !== undefined && hostIp !== '0.0.0.0' ? { host_ip: hostIp } : {}),
  };
}

function splitProtocol(scope: Scope, key: PropertyKey[], text: string): { spec: string; udp: boolean } {
  const spec = text.trim();
  const slash = spec.lastIndexOf('/');
  if (slash < 0) return { spec, udp: false };
  const protocol = spec.slice(slash + 1);
  if (protocol === 'sctp') scope.failKey(key, `"${text}": drover relays TCP and UDP, not SCTP`);
  if (protocol !== 'tcp' && protocol !== 'udp') scope.failKey(key, `"${text}": unknown protocol "${protocol}"`);
  return { spec: spec.slice(0, slash), udp: protocol === 'udp' };
}

function readShort(scope: Scope, key: PropertyKey[], text: string): Mapping[] {
  const { spec, udp } = splitProtocol(scope, key, text);
  if (spec.startsWith('[')) scope.failKey(key, `"${text}": an IPv6 host address is not supported: drover's nodes listen on IPv4 addresses`);
  const parts = spec.split(':');
  let hostIp: string | undefined;
  if (parts.length === 3) {
    hostIp = parts.shift()!;
    if (!IPV4.test(hostIp)) scope.failKey(key, `"${text}": "${hostIp}" ${HOST_IP}`);
    if (parts[0] === '') scope.failKey(key, `"${text}" ${NEEDS_PUBLISHED}`);
  }
  if (parts.length === 1) scope.failKey(key, `"${text}" ${NEEDS_PUBLISHED}`);
  if (parts.length !== 2) scope.failKey(key, `"${text}" is not a port mapping ("PUBLISHED:TARGET", e.g. "8080:80")`);
  const external = parseRange(parts[0]!);
  const internal = parseRange(parts[1]!);
  if (external === null || internal === null) {
    scope.failKey(key, `"${text}" is not a port mapping: ports are numbers 1-65535 ("PUBLISHED:TARGET", e.g. "8080:80")`);
  }
  if (external.length !== internal.length) scope.failKey(key, `"${text}": the two port ranges have different lengths`);
  return internal.map((port, i) => mapping(port, external[i]!, udp, hostIp));
}

function parsePort(text: string): number | null {
  if (!/^\d{1,5}$/.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : null;
}

function parseRange(text: string): number[] | null {
  const [from, to, ...rest] = text.split('-');
  if (rest.length > 0 || from === undefined) return null;
  const a = parsePort(from);
  const b = to === undefined ? a : parsePort(to);
  if (a === null || b === null || b < a || b - a > 1000) return null;
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

import { z } from 'zod';
import type { Scope } from './scope.ts';

type Mapping = { internal: number; external: number };

const PortLong = z
  .object({
    target: z.number().int().min(1).max(65535),
    published: z.union([z.string(), z.number().int()]).optional(),
    protocol: z.enum(['tcp', 'udp']).optional(),
    mode: z.enum(['ingress', 'host']).optional(),
    name: z.string().optional(),
    app_protocol: z.string().optional(),
  })
  .strict();

const NO_HOST_IP =
  'drover publishes every port on each node\'s own address (through its routing proxy), so a host address cannot be chosen; write "PUBLISHED:TARGET"';
const NEEDS_PUBLISHED = 'needs a published port ("8080:80"): drover publishes each port at the same number on every node';
const TCP_ONLY = 'drover routes TCP only';

/**
 * Reads Compose `ports:` in both syntaxes into `{internal, external}` pairs.
 * Short: `"8080:80"`, `"8080:80/tcp"`, `"8000-8001:8000-8001"`. A host address
 * (`"127.0.0.1:8080:80"`, long `host_ip`) is refused, as are a container-only port (Compose
 * would pick a random host port; drover's proxy needs a fixed one) and UDP.
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
      else if (entry !== null && typeof entry === 'object' && 'host_ip' in entry) scope.failKey([...key, 'host_ip'], NO_HOST_IP);
      else {
        const long = scope.shape(key, PortLong, entry);
        if (long.protocol === 'udp') scope.failKey([...key, 'protocol'], TCP_ONLY);
        if (long.published === undefined) scope.failKey(key, `port ${long.target} ${NEEDS_PUBLISHED}`);
        const published = typeof long.published === 'number' ? long.published : parsePort(long.published);
        if (published === null) scope.failKey([...key, 'published'], `"${long.published}" is not a port number (1-65535)`);
        out.push({ internal: long.target, external: published });
      }
    }, undefined),
  );
  const seen = new Map<number, number>();
  out.forEach((p) => {
    const count = (seen.get(p.external) ?? 0) + 1;
    seen.set(p.external, count);
    if (count > 1) scope.failKey(['ports'], `published port ${p.external} appears more than once`);
  });
  return out;
}

function readShort(scope: Scope, key: PropertyKey[], text: string): Mapping[] {
  let spec = text.trim();
  const slash = spec.lastIndexOf('/');
  if (slash >= 0) {
    const protocol = spec.slice(slash + 1);
    if (protocol === 'udp' || protocol === 'sctp') scope.failKey(key, `"${text}": ${TCP_ONLY}`);
    if (protocol !== 'tcp') scope.failKey(key, `"${text}": unknown protocol "${protocol}"`);
    spec = spec.slice(0, slash);
  }
  const parts = spec.split(':');
  if (parts.length === 3 || spec.startsWith('[')) scope.failKey(key, `"${text}": a host address is not supported: ${NO_HOST_IP}`);
  if (parts.length === 1) scope.failKey(key, `"${text}" ${NEEDS_PUBLISHED}`);
  if (parts.length !== 2) scope.failKey(key, `"${text}" is not a port mapping ("PUBLISHED:TARGET", e.g. "8080:80")`);
  const external = parseRange(parts[0]!);
  const internal = parseRange(parts[1]!);
  if (external === null || internal === null) {
    scope.failKey(key, `"${text}" is not a port mapping: ports are numbers 1-65535 ("PUBLISHED:TARGET", e.g. "8080:80")`);
  }
  if (external.length !== internal.length) scope.failKey(key, `"${text}": the two port ranges have different lengths`);
  return internal.map((port, i) => ({ internal: port, external: external[i]! }));
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

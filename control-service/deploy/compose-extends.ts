import { z } from 'zod';
import type { Scope } from './scope.ts';

const Extends = z.union([z.string(), z.object({ service: z.string(), file: z.string().optional() }).strict()], {
  error: 'must be a service name or { service }',
});

/** Keys whose entries merge by name (lists of `KEY=VALUE` become mappings first). */
const MAPPINGS = new Set(['environment', 'labels', 'ulimits', 'deploy', 'logging', 'x-drover', 'healthcheck', 'build']);
/** Keys whose lists add up, as Compose merges them (without repeats). */
const SEQUENCES = new Set(['ports', 'volumes', 'cap_add', 'cap_drop', 'tmpfs', 'env_file', 'links', 'dns', 'profiles']);

/**
 * A service with `extends: base` (or `{ service: base }`) of the same file, merged as Compose
 * merges: the service's own keys win, mappings (`environment`, `labels`, …) merge key by key,
 * lists (`ports`, `volumes`, …) add up; chains are followed. Returns the merged mapping
 * without `extends`. `extends.file` (another file) is refused: drover reads one file.
 */
export function resolveExtends(scope: Scope, services: Record<string, unknown>, name: string, seen: string[] = []): unknown {
  const raw = services[name];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || !('extends' in raw)) return raw;
  const { extends: ext, ...own } = raw as Record<string, unknown>;
  const spec = scope.shape(['extends'], Extends, ext);
  const base = typeof spec === 'string' ? spec : spec.service;
  if (typeof spec !== 'string' && spec.file !== undefined) {
    scope.failKey(['extends', 'file'], `"${spec.file}": drover reads one Compose file; extend a service of this file, or copy the service in`);
  }
  if (base === name || seen.includes(base)) scope.failKey(['extends'], `"${base}": extends goes round in a circle (${[...seen, name, base].join(' → ')})`);
  if (!(base in services)) scope.failKey(['extends'], `service "${base}" is not in this file`);
  const parent = resolveExtends(scope, services, base, [...seen, name]);
  if (parent === null || typeof parent !== 'object' || Array.isArray(parent)) return own;
  return mergeService(parent as Record<string, unknown>, own);
}

function mergeService(base: Record<string, unknown>, own: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(own)) {
    const old = out[key];
    if (MAPPINGS.has(key) && isMapLike(old) && isMapLike(value)) out[key] = mergeMaps(asMap(old), asMap(value));
    else if (SEQUENCES.has(key) && Array.isArray(old) && Array.isArray(value)) {
      out[key] = [...old.filter((o) => !value.some((v) => JSON.stringify(v) === JSON.stringify(o))), ...value];
    } else out[key] = value;
  }
  return out;
}

function isMapLike(v: unknown): boolean {
  return v !== null && typeof v === 'object';
}

/** A mapping, or a list of `KEY=VALUE` turned into one (a bare `KEY` stays null). */
function asMap(v: unknown): Record<string, unknown> {
  if (!Array.isArray(v)) return v as Record<string, unknown>;
  return Object.fromEntries(
    v.map((item) => {
      const text = String(item);
      const eq = text.indexOf('=');
      return eq < 0 ? [text, null] : [text.slice(0, eq), text.slice(eq + 1)];
    }),
  );
}

function mergeMaps(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const old = out[k];
    out[k] = old !== null && typeof old === 'object' && !Array.isArray(old) && v !== null && typeof v === 'object' && !Array.isArray(v) ? mergeMaps(old as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

import { DroverError } from '#common/errors.ts';

/** Where in which file a problem is: every message names the file, then the service and key. */
export interface ConfigPlace {
  file: string;
  service?: string;
  /** The key inside the service (or at the top level), dotted: `deploy.resources.limits.memory`. */
  key?: string;
  line?: number;
  column?: number;
}

/**
 * Builds the one error of config parsing, `DROVER_BAD_CONFIG`. The message reads
 * `compose.yml:12:5: service "web": unsupported key "privileged"`; the same facts are in
 * `detail` for the API to return.
 */
export function badConfig(place: ConfigPlace, what: string, issues?: unknown[]): DroverError {
  const where = place.line === undefined ? place.file : `${place.file}:${place.line}:${place.column ?? 1}`;
  const parts = [where];
  if (place.service !== undefined) parts.push(`service "${place.service}"`);
  parts.push(what);
  const detail: Record<string, unknown> = { file: place.file };
  if (place.service !== undefined) detail.service = place.service;
  if (place.key !== undefined) detail.key = place.key;
  if (place.line !== undefined) detail.line = place.line;
  if (place.column !== undefined) detail.column = place.column;
  if (issues !== undefined) detail.issues = issues;
  return new DroverError('DROVER_BAD_CONFIG', parts.join(': '), { detail });
}

/** `ports[0].target` from `['ports', 0, 'target']`; `nodes['127.0.0.1'][0]` for keys with dots. */
export function keyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (!/^[A-Za-z0-9_-]+$/.test(String(part))) out += `['${String(part)}']`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

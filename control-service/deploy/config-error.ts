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
  const parts = [where(place)];
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

/** One problem of a file: where, and what (without the place). */
export interface ConfigProblem {
  place: ConfigPlace;
  what: string;
  /** Zod's further issues for the same value, if any. */
  issues?: unknown[];
}

/**
 * Thrown inside the readers to abandon the value being read once its problem is recorded
 * (YamlSource.problems); `Scope.attempt` catches it around the next independent piece, so
 * one parse finds all of a file's problems. Never leaves parseDeployment.
 */
export class ConfigAbort extends Error {
  constructor() {
    super('config problem recorded');
  }
}

/**
 * The one error for all problems of the files. One problem: its line is the message and its
 * place the detail, as `badConfig`. Several: a first line counting them, then one line each
 * (file:line:column: service: key: what to do), by file and position; `detail` is the first
 * one's place plus `problems: [{ file, line?, column?, service?, key?, message }]`.
 */
export function badConfigAll(found: readonly ConfigProblem[]): DroverError {
  // In file order, then by position: the order an operator reads and fixes them in.
  const files = [...new Set(found.map((p) => p.place.file))];
  const problems = [...found].sort(
    (a, b) =>
      files.indexOf(a.place.file) - files.indexOf(b.place.file) ||
      (a.place.line ?? 0) - (b.place.line ?? 0) ||
      (a.place.column ?? 0) - (b.place.column ?? 0),
  );
  const first = problems[0]!;
  if (problems.length === 1) return badConfig(first.place, first.what, first.issues);
  const lines = problems.map((p) => ({ ...p.place, message: badConfig(p.place, p.what).message }));
  const message = [`${files.join(', ')}: ${problems.length} problems`, ...lines.map((l) => `  ${l.message}`)].join('\n');
  const detail: Record<string, unknown> = { ...first.place, problems: lines };
  return new DroverError('DROVER_BAD_CONFIG', message, { detail });
}

function where(place: ConfigPlace): string {
  return place.line === undefined ? place.file : `${place.file}:${place.line}:${place.column ?? 1}`;
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

/**
 * Compose's variables, done where Compose does them: on the operator's machine, before the
 * file leaves it (the control service sees neither this shell nor the files beside the
 * Compose file). Pure: the caller reads the files and passes the environment in.
 *
 * - `parseDotEnv`, `interpolate` (compose-interpolate.ts): `.env` text by Compose's rules;
 *   one string — `$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?err}`, `${VAR?err}`,
 *   `${VAR:+alt}`, `${VAR+alt}` (nested in defaults), `$$` for a literal `$`. An unset
 *   variable warns and is empty, as in Compose.
 * - `interpolateCompose`: every value (never a key) of a Compose file, rewritten in place so
 *   that every other line and column stays where the operator wrote it (error messages point
 *   into their file); bare `environment:` names get their value from the environment.
 * - `withTrailer`: appends `x-drover-cli:` (interpolated, profiles, env_file contents), which
 *   tells the control service that `$` is now literal (control-service/deploy/compose-file.ts).
 */
import { isMap, isScalar, isSeq, parseDocument, visit, type Document, type Scalar } from 'yaml';
import { interpolate, parseDotEnv, type Lookup } from './compose-interpolate.ts';
import { collectFiles, type FileRef, type PathContent } from './compose-files.ts';

export { interpolate, parseDotEnv, type Interpolated, type Lookup } from './compose-interpolate.ts';

export interface ComposeInterpolation {
  text: string;
  /** `compose.yml:4:12: variable "TAG" is not set, using ""` (Compose's warning). */
  warnings: string[];
  /** `compose.yml:4:12: DB_PASSWORD: must be set`. The deploy stops on any. */
  errors: string[];
  /** The document, interpolated (for env_file paths, profiles, the project name). */
  value: unknown;
}

/**
 * Interpolates every scalar value (not keys) of a Compose file's text. A changed value is
 * rewritten in place as a one-line JSON string (valid YAML), followed by as many line breaks
 * as it spanned, so that every other key keeps its line and column. Bare names under a
 * service's `environment:` get their value from `lookup` (unset: dropped by the control
 * service, with a warning here, as in Compose). Pure.
 */
export function interpolateCompose(text: string, file: string, lookup: Lookup): ComposeInterpolation {
  const doc = parseDocument(text, { keepSourceTokens: false });
  const warnings: string[] = [];
  const errors: string[] = [];
  if (doc.errors.length > 0) return { text, warnings, errors, value: null }; // the control service reports YAML errors with their place
  const edits: { from: number; to: number; text: string }[] = [];
  const at = (offset: number) => {
    const before = text.slice(0, offset).split('\n');
    return `${file}:${before.length}:${before[before.length - 1]!.length + 1}`;
  };
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$') || !node.range) return;
      const r = interpolate(node.value, lookup);
      for (const name of r.unset) warnings.push(`${at(node.range[0])}: variable "${name}" is not set, using ""`);
      errors.push(...r.errors.map((e) => `${at(node.range![0])}: ${e}`));
      if (r.value !== node.value) edits.push(replace(text, node, r.value));
    },
  });
  bareEnvironment(doc, text, file, lookup, edits, warnings, at);
  edits.sort((a, b) => b.from - a.from);
  let out = text;
  for (const e of edits) out = out.slice(0, e.from) + e.text + out.slice(e.to);
  const value = parseDocument(out).toJS({ maxAliasCount: 1000 }) as unknown;
  return { text: out, warnings, errors, value };
}

function replace(text: string, node: Scalar, value: string): { from: number; to: number; text: string } {
  const [from, to] = node.range!;
  const breaks = (text.slice(from, to).match(/\n/g) ?? []).length;
  return { from, to, text: JSON.stringify(value) + '\n'.repeat(breaks) };
}

/** `environment: [NAME]` and `environment: { NAME: }`: the value from the deploying shell. */
function bareEnvironment(doc: Document.Parsed, text: string, file: string, lookup: Lookup, edits: { from: number; to: number; text: string }[], warnings: string[], at: (o: number) => string): void {
  const services = doc.get('services', true);
  if (!isMap(services)) return;
  for (const pair of services.items) {
    const service = pair.value;
    if (!isMap(service)) continue;
    const env = service.get('environment', true);
    if (isSeq(env)) {
      for (const item of env.items) {
        if (!isScalar(item) || typeof item.value !== 'string' || item.value.includes('=') || !item.range) continue;
        const v = lookup(item.value);
        if (v === undefined) warnings.push(`${at(item.range[0])}: variable "${item.value}" is not set; it is left out of the environment`);
        else edits.push(replace(text, item, `${item.value}=${v}`));
      }
    } else if (isMap(env)) {
      for (const p of env.items) {
        if (!isScalar(p.key) || !p.key.range) continue;
        if (!(p.value === null || (isScalar(p.value) && p.value.value === null))) continue;
        const name = String(p.key.value);
        const v = lookup(name);
        if (v === undefined) {
          warnings.push(`${at(p.key.range[0])}: variable "${name}" is not set; it is left out of the environment`);
          continue;
        }
        // `NAME:` (or `NAME: null`): the value goes after the colon, on the same line.
        const nullNode = isScalar(p.value) ? p.value : null;
        if (nullNode?.range && nullNode.range[1] > nullNode.range[0]) edits.push(replace(text, nullNode, v));
        else {
          const colon = text.indexOf(':', p.key.range[1]);
          edits.push({ from: colon + 1, to: colon + 1, text: ` ${JSON.stringify(v)}` });
        }
      }
    }
  }
  void file;
}

export interface Trailer {
  profiles: string[];
  /** env_file path as written → its variables, or null when there is no such file. */
  envFiles: Record<string, Record<string, string> | null>;
  /** Shipped paths (and `env:NAME` sources) → their content's SHA-256 (cli/compose-files.ts). */
  files?: Record<string, FileRef | null>;
}

/**
 * The Compose text with the CLI's trailer appended as the last top-level key (one line of
 * JSON), so that no line or column of the operator's text moves. Null when the file's top
 * level is not a block mapping (the trailer could not be appended); the control service then
 * reads the file as it came.
 */
export function withTrailer(text: string, trailer: Trailer): string | null {
  const files = trailer.files !== undefined && Object.keys(trailer.files).length > 0 ? { files: trailer.files } : {};
  const line = `x-drover-cli: ${JSON.stringify({ interpolated: true, profiles: trailer.profiles, env_files: trailer.envFiles, ...files })}\n`;
  const out = `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}${line}`;
  const doc = parseDocument(out);
  if (doc.errors.length > 0 || !isMap(doc.contents) || doc.contents.flow === true) return null;
  return out;
}

/** The `env_file:` paths of every service, as written (after interpolation). */
export function envFilePaths(compose: unknown): { path: string; required: boolean }[] {
  const out: { path: string; required: boolean }[] = [];
  const services = (compose as { services?: unknown } | null)?.services;
  if (services === null || typeof services !== 'object') return out;
  for (const s of Object.values(services as Record<string, unknown>)) {
    const v = (s as { env_file?: unknown } | null)?.env_file;
    const list = typeof v === 'string' ? [v] : Array.isArray(v) ? v : [];
    for (const e of list) {
      if (typeof e === 'string') out.push({ path: e, required: true });
      else if (e !== null && typeof e === 'object' && typeof (e as { path?: unknown }).path === 'string') {
        out.push({ path: (e as { path: string }).path, required: (e as { required?: unknown }).required !== false });
      }
    }
  }
  return out;
}

export interface PrepareInput {
  /** The Compose file's text and its name as typed (for messages). */
  text: string;
  file: string;
  /** The CLI's environment (`process.env`): it wins over `.env`, as in Compose. */
  env: Readonly<Record<string, string | undefined>>;
  /** `--env-file` (as typed) instead of the project's `.env`; `.env` is optional, this one is not. */
  envFile?: string;
  /** `--profile` values; COMPOSE_PROFILES (comma-separated) adds to them. */
  profiles: string[];
  /** Reads a file relative to the Compose file's directory; null when there is none. */
  readText: (path: string) => Promise<string | null>;
  /** Reads a shipped file or directory relative to the Compose file's directory (configs, secrets, ro binds). */
  readPath?: (path: string) => Promise<PathContent | null>;
}

export interface Prepared {
  /** What goes to the control service. */
  text: string;
  warnings: string[];
  /** Problems that stop the deploy here (a `${VAR:?}` unset, a bad `.env` line). */
  errors: string[];
  /** COMPOSE_PROJECT_NAME, when set; the caller weighs it against --project and `name:`. */
  projectFromEnv?: string;
  /** Contents of the shipped files, by SHA-256: the deploy body's `files`. */
  uploads: Map<string, Uint8Array>;
}

/**
 * Everything the CLI does to a Compose file before sending it: reads `.env` (or
 * `--env-file`), interpolates, reads each service's `env_file:`, and appends the trailer.
 */
export async function prepareCompose(input: PrepareInput): Promise<Prepared> {
  // Only Compose files (`services:`) are interpolated; Flocker and Fig files go as they are.
  const doc = parseDocument(input.text);
  const top = doc.errors.length > 0 ? null : (doc.toJS({ maxAliasCount: 1000 }) as unknown);
  if (top === null || typeof top !== 'object' || !('services' in top)) return { text: input.text, warnings: [], errors: [], uploads: new Map() };
  const errors: string[] = [];
  const warnings: string[] = [];
  const dotenvName = input.envFile ?? '.env';
  const dotenvText = await input.readText(dotenvName);
  if (dotenvText === null && input.envFile !== undefined) errors.push(`--env-file ${input.envFile}: no such file`);
  const shell: Lookup = (name) => input.env[name];
  const dotenv = dotenvText === null ? { vars: {}, errors: [], unset: [] } : parseDotEnv(dotenvText, dotenvName, shell);
  errors.push(...dotenv.errors);
  const lookup: Lookup = (name) => input.env[name] ?? (Object.hasOwn(dotenv.vars, name) ? (dotenv.vars as Record<string, string>)[name] : undefined);

  const result = interpolateCompose(input.text, input.file, lookup);
  warnings.push(...result.warnings);
  errors.push(...result.errors);
  const envFiles: Record<string, Record<string, string> | null> = {};
  for (const { path } of envFilePaths(result.value)) {
    if (path in envFiles) continue;
    const text = await input.readText(path);
    if (text === null) {
      envFiles[path] = null;
      continue;
    }
    // env_file values interpolate from the environment and the file itself, as Compose's do.
    const parsed = parseDotEnv(text, path, lookup);
    errors.push(...parsed.errors);
    for (const name of parsed.unset) warnings.push(`${path}: variable "${name}" is not set, using ""`);
    envFiles[path] = parsed.vars;
  }
  const fromEnv = (lookup('COMPOSE_PROFILES') ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const profiles = [...new Set([...input.profiles, ...fromEnv])];
  const readPath = input.readPath ?? (async (path: string) => {
    const text = await input.readText(path);
    return text === null ? null : { file: Buffer.from(text) };
  });
  const files = await collectFiles(result.value, readPath, lookup);
  const text = withTrailer(result.text, { profiles, envFiles, files: files.refs });
  if (text === null) warnings.push(`${input.file}: its top level is not a block mapping, so it is sent without interpolation`);
  const prepared: Prepared = { text: text ?? input.text, warnings, errors, uploads: text === null ? new Map() : files.uploads };
  const project = lookup('COMPOSE_PROJECT_NAME');
  if (project !== undefined && project !== '') prepared.projectFromEnv = project;
  return prepared;
}

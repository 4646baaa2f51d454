/**
 * Compose's variables, done where Compose does them: on the operator's machine, before the
 * file leaves it (the control service sees neither this shell nor the files beside the
 * Compose file). Pure: the caller reads the files and passes the environment in.
 *
 * - `parseDotEnv`: `.env` / `--env-file` / `env_file:` text, by Compose's rules.
 * - `interpolate`: one string — `$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?err}`,
 *   `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}` (nested in defaults), `$$` for a literal `$`.
 *   An unset variable warns and is empty, as in Compose.
 * - `interpolateCompose`: every value (never a key) of a Compose file, rewritten in place so
 *   that every other line and column stays where the operator wrote it (error messages point
 *   into their file); bare `environment:` names get their value from the environment.
 * - `withTrailer`: appends `x-drover-cli:` (interpolated, profiles, env_file contents), which
 *   tells the control service that `$` is now literal (control-service/deploy/compose-file.ts).
 */
import { isMap, isScalar, isSeq, parseDocument, visit, type Document, type Scalar } from 'yaml';

export type Lookup = (name: string) => string | undefined;

export interface Interpolated {
  value: string;
  /** Unset variables used without a default (Compose warns and uses ""). */
  unset: string[];
  /** `${VAR:?message}` failures and malformed `${…}`. */
  errors: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/** Interpolates one string. Pure. */
export function interpolate(text: string, lookup: Lookup): Interpolated {
  const unset: string[] = [];
  const errors: string[] = [];
  const value = expand(text, lookup, unset, errors);
  return { value, unset, errors };
}

function expand(text: string, lookup: Lookup, unset: string[], errors: string[]): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '{') {
      const end = closingBrace(text, i + 2);
      if (end < 0) {
        errors.push(`"${text}": "\${" is not closed (write "$$" for a literal "$")`);
        return out + text.slice(i);
      }
      out += braced(text.slice(i + 2, end), lookup, unset, errors);
      i = end + 1;
    } else {
      const m = NAME.exec(text.slice(i + 1));
      if (m === null) {
        out += '$'; // a lone "$" (before a digit, a space, the end) stays, as in Compose
        i++;
        continue;
      }
      out += variable(m[0], lookup, unset);
      i += 1 + m[0].length;
    }
  }
  return out;
}

/** The index of the `}` closing a `${` whose body starts at `from`, braces nested; -1 if none. */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let j = from; j < text.length; j++) {
    if (text[j] === '$' && text[j + 1] === '$') j++;
    else if (text[j] === '$' && text[j + 1] === '{') {
      depth++;
      j++;
    } else if (text[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

function braced(body: string, lookup: Lookup, unset: string[], errors: string[]): string {
  const m = NAME.exec(body);
  if (m === null) {
    errors.push(`"\${${body}}" is not a variable ("\${NAME}", "\${NAME:-default}")`);
    return '';
  }
  const name = m[0];
  const rest = body.slice(name.length);
  if (rest === '') return variable(name, lookup, unset);
  const op = /^(:-|-|:\?|\?|:\+|\+)/.exec(rest)?.[0];
  if (op === undefined) {
    errors.push(`"\${${body}}": unknown operator after ${name} (":-", "-", ":?", "?", ":+", "+")`);
    return '';
  }
  const arg = () => expand(rest.slice(op.length), lookup, unset, errors);
  const raw = lookup(name);
  const empty = raw === undefined || (op.startsWith(':') && raw === '');
  switch (op) {
    case ':-':
    case '-':
      return empty ? arg() : raw!;
    case ':?':
    case '?': {
      if (!empty) return raw!;
      const message = arg();
      errors.push(`required variable ${name} is missing a value${message === '' ? '' : `: ${message}`}`);
      return '';
    }
    default: // ':+' and '+': the alternative when set
      return empty ? '' : arg();
  }
}

function variable(name: string, lookup: Lookup, unset: string[]): string {
  const v = lookup(name);
  if (v === undefined) {
    if (!unset.includes(name)) unset.push(name);
    return '';
  }
  return v;
}

/**
 * Parses dotenv text as Compose does: `KEY=VALUE` lines, optional `export `, `#` comments,
 * blank lines; values unquoted (trimmed, ` #…` cut), in single quotes (literal) or in double
 * quotes (escapes `\n \t \\ \"`, may span lines); unquoted and double-quoted values
 * interpolate `${VAR}` from the variables above them, then `lookup`. A line that is not an
 * assignment is an error naming its line.
 */
export function parseDotEnv(text: string, file: string, lookup: Lookup = () => undefined): { vars: Record<string, string>; errors: string[]; unset: string[] } {
  const vars: Record<string, string> = {};
  const errors: string[] = [];
  const unset: string[] = [];
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const seen: Lookup = (name) => (Object.hasOwn(vars, name) ? vars[name] : lookup(name));
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(=)?\s*(.*)$/.exec(line);
    if (m === null) {
      errors.push(`${file}:${n + 1}: "${line}" is not "NAME=value"`);
      continue;
    }
    const [, name, eq, rest] = m as unknown as [string, string, string | undefined, string];
    if (eq === undefined) {
      // A bare NAME takes its value from the environment, when set there.
      const v = lookup(name);
      if (v !== undefined) vars[name] = v;
      continue;
    }
    let value: string;
    if (rest.startsWith("'")) {
      const close = rest.indexOf("'", 1);
      value = close < 0 ? rest.slice(1) : rest.slice(1, close);
    } else if (rest.startsWith('"')) {
      let body = rest.slice(1);
      while (!/(^|[^\\])(\\\\)*"/.test(body) && n + 1 < lines.length) body += `\n${lines[++n]}`;
      const close = /(^|[^\\])(\\\\)*"/.exec(body);
      body = close === null ? body : body.slice(0, close.index + close[0].length - 1);
      body = body.replace(/\\([nrt"\\$])/g, (_, e: string) => ({ n: '\n', r: '\r', t: '\t' })[e] ?? (e === '$' ? '$$' : e));
      const r = interpolate(body, seen);
      errors.push(...r.errors.map((e) => `${file}:${n + 1}: ${e}`));
      unset.push(...r.unset);
      value = r.value;
    } else {
      const r = interpolate(rest.replace(/\s+#.*$/, '').trim(), seen);
      errors.push(...r.errors.map((e) => `${file}:${n + 1}: ${e}`));
      unset.push(...r.unset);
      value = r.value;
    }
    vars[name] = value;
  }
  return { vars, errors, unset: [...new Set(unset)] };
}

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
}

/**
 * The Compose text with the CLI's trailer appended as the last top-level key (one line of
 * JSON), so that no line or column of the operator's text moves. Null when the file's top
 * level is not a block mapping (the trailer could not be appended); the control service then
 * reads the file as it came.
 */
export function withTrailer(text: string, trailer: Trailer): string | null {
  const line = `x-drover-cli: ${JSON.stringify({ interpolated: true, profiles: trailer.profiles, env_files: trailer.envFiles })}\n`;
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
}

export interface Prepared {
  /** What goes to the control service. */
  text: string;
  warnings: string[];
  /** Problems that stop the deploy here (a `${VAR:?}` unset, a bad `.env` line). */
  errors: string[];
  /** COMPOSE_PROJECT_NAME, when set; the caller weighs it against --project and `name:`. */
  projectFromEnv?: string;
}

/**
 * Everything the CLI does to a Compose file before sending it: reads `.env` (or
 * `--env-file`), interpolates, reads each service's `env_file:`, and appends the trailer.
 */
export async function prepareCompose(input: PrepareInput): Promise<Prepared> {
  // Only Compose files (`services:`) are interpolated; Flocker and Fig files go as they are.
  const doc = parseDocument(input.text);
  const top = doc.errors.length > 0 ? null : (doc.toJS({ maxAliasCount: 1000 }) as unknown);
  if (top === null || typeof top !== 'object' || !('services' in top)) return { text: input.text, warnings: [], errors: [] };
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
  const text = withTrailer(result.text, { profiles, envFiles });
  if (text === null) warnings.push(`${input.file}: its top level is not a block mapping, so it is sent without interpolation`);
  const prepared: Prepared = { text: text ?? input.text, warnings, errors };
  const project = lookup('COMPOSE_PROJECT_NAME');
  if (project !== undefined && project !== '') prepared.projectFromEnv = project;
  return prepared;
}

/**
 * Files that travel with a project (docs/DESIGN.md §22): Compose's `configs:` and `secrets:`
 * (top level: `file:` or `environment:`, and `content:` for a config; per service: short and
 * long syntax with `target`, `mode`, `uid`, `gid`), read-only bind mounts of files or small
 * directories of the project (`./nginx.conf:/etc/nginx/nginx.conf:ro`), and environment
 * values marked secret (`x-drover: { secret_env: [NAME] }`). Pure.
 *
 * The files sit on the operator's machine: the drover CLI reads them, uploads their contents
 * with the deploy and names each path's content in its trailer (`x-drover-cli.files`:
 * path as written → `{ sha256 }`, `{ tree: { relative path: sha256 } }` for a directory, or
 * null when there is no such file; `env:NAME` for an `environment:` source). A config's or a
 * project file's content id is its SHA-256; a secret's is the control service's keyed id
 * (`secretIdOf`), so the application never names a secret by a plain hash.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { AppFile } from '#common/model.ts';
import type { Scope } from './scope.ts';

/** What the CLI says a path holds (its trailer's `files`). */
export const FileRef = z.union([
  z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict(),
  z.object({ tree: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)) }).strict(),
  z.object({ error: z.string().max(1024) }).strict(),
]);
export type FileRef = z.infer<typeof FileRef>;

/** Contents a deploy stores (plaintext only in memory: a secret is sealed by the vault). */
export interface DeployContent {
  kind: 'file' | 'secret';
  bytes: Uint8Array;
}

/** What reading files needs beyond the file itself; one per deploy. */
export interface FileContext {
  /** From the CLI's trailer; undefined when the file did not come through the drover CLI. */
  refs?: Readonly<Record<string, FileRef | null>>;
  /** Uploaded contents by SHA-256 (the deploy body's `files`). */
  uploads: ReadonlyMap<string, Uint8Array>;
  /** The control service's id of a secret's content (keyed HMAC). */
  secretIdOf: (bytes: Uint8Array) => string;
  /** Filled in: the contents the deploy must store, by id. */
  contents: Map<string, DeployContent>;
}

const NO_CLI = 'is a file on the deploying machine; deploy with the drover CLI, which uploads it with the deploy';
const BIND_RW = 'a read-write bind mount of a host directory does not move with the service; use a named volume: drover moves it with the service (or add ":ro" to ship a project file with the deploy)';
const BIND_HOST = 'a host path stays on its host and does not move with the service; use a named volume (drover moves it with the service), or a file of the project ("./file:/path:ro")';

const TopEntry = z
  .object({
    file: z.string().min(1).optional(),
    environment: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a variable name').optional(),
    content: z.string().optional(),
  })
  .strict();

const TOP_REASONS: Record<string, string> = {
  external: 'drover keeps a project\'s files with the project; give "file:" or "environment:"',
  name: 'drover names a file by its content; drop "name"',
  driver: 'drover stores the content itself; drop "driver"',
  template_driver: 'templates are not expanded; drop "template_driver"',
  labels: 'not supported on configs and secrets',
};

/** A top-level config or secret, read: its content's id (or null when it has a problem, recorded). */
export type TopFiles = Map<string, string | null>;

/**
 * Reads top-level `configs:` or `secrets:`. Each entry's content is found (in the uploads, the
 * CLI's trailer, or inline `content:` for a config) and recorded in `ctx.contents`.
 */
export function readTopFiles(scope: Scope, kind: 'configs' | 'secrets', value: unknown, ctx: FileContext): TopFiles {
  const out: TopFiles = new Map();
  const record = scope.shape([kind], z.record(z.string(), z.unknown()).nullable(), value) ?? {};
  for (const [name, raw] of Object.entries(record)) {
    out.set(name, null);
    scope.attempt(() => {
      const key: PropertyKey[] = [kind, name];
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(name)) scope.failKey(key, `"${name}" is not a name (letters, digits, "_", "." or "-")`);
      const spec = scope.shape(key, TopEntry.nullable(), raw, TOP_REASONS) ?? {};
      const sources = (['file', 'environment', 'content'] as const).filter((k) => spec[k] !== undefined);
      if (sources.length !== 1) scope.failKey(key, `give exactly one of "file:"${kind === 'configs' ? ', "content:"' : ''} or "environment:"`);
      const secret = kind === 'secrets';
      if (spec.content !== undefined) {
        if (secret) scope.failKey([...key, 'content'], 'a secret\'s value does not belong in the Compose file; give "file:" or "environment:"');
        out.set(name, store(ctx, 'file', Buffer.from(spec.content)));
        return;
      }
      const path = spec.file ?? `env:${spec.environment}`;
      const at = [...key, spec.file !== undefined ? 'file' : 'environment'];
      if (spec.file !== undefined) checkProjectPath(scope, at, spec.file);
      const bytes = uploaded(scope, at, path, ctx, 'file');
      out.set(name, store(ctx, secret ? 'secret' : 'file', bytes));
    }, undefined);
  }
  return out;
}

const ServiceLong = z
  .object({
    source: z.string().min(1),
    target: z.string().min(1).optional(),
    uid: z.union([z.string(), z.number()]).optional(),
    gid: z.union([z.string(), z.number()]).optional(),
    mode: z.union([z.string(), z.number()]).optional(),
  })
  .strict();

/**
 * A service's `configs:` or `secrets:` → files. Short syntax `- name`: a config at `/<name>`,
 * a secret at `/run/secrets/<name>` (Compose's places); long syntax `{source, target, uid,
 * gid, mode}`, a secret's relative target under `/run/secrets/`. Default mode 0444.
 */
export function readServiceFiles(scope: Scope, kind: 'configs' | 'secrets', value: unknown, top: TopFiles): AppFile[] {
  const list = scope.shape([kind], z.array(z.union([z.string(), z.unknown()])), value);
  const files: AppFile[] = [];
  list.forEach((entry, i) =>
    scope.attempt(() => {
      const key: PropertyKey[] = [kind, i];
      const spec = typeof entry === 'string' ? { source: entry } : scope.shape(key, ServiceLong, entry);
      if (!top.has(spec.source)) scope.failKey(key, `${kind === 'configs' ? 'config' : 'secret'} "${spec.source}" is not declared under the top-level "${kind}:"`);
      const id = top.get(spec.source);
      if (id === null || id === undefined) return; // its problem is recorded at the top level
      const secret = kind === 'secrets';
      let target = spec.target ?? (secret ? spec.source : `/${spec.source}`);
      if (secret && !target.startsWith('/')) target = `/run/secrets/${target}`;
      if (!target.startsWith('/')) scope.failKey([...key, 'target'], `"${target}" must be an absolute path in the container`);
      const file: AppFile = { target, kind: secret ? 'secret' : 'config', blob: id };
      if (spec.mode !== undefined) file.mode = readMode(scope, [...key, 'mode'], spec.mode);
      if (spec.uid !== undefined) file.uid = readId(scope, [...key, 'uid'], spec.uid);
      if (spec.gid !== undefined) file.gid = readId(scope, [...key, 'gid'], spec.gid);
      files.push(file);
    }, undefined),
  );
  return files;
}

/**
 * A bind mount of the project: `./nginx.conf:/etc/nginx/nginx.conf:ro` (or the long syntax
 * with `read_only: true`) becomes a file (or a directory) shipped with the deploy. Read-write,
 * or of a host path outside the project, it is refused with the advice.
 */
export function readProjectBind(scope: Scope, key: PropertyKey[], source: string, target: string, readOnly: boolean, ctx: FileContext): AppFile {
  if (source.startsWith('/') || source.startsWith('~') || source.startsWith('$')) scope.failKey(key, `"${source}": ${BIND_HOST}`);
  if (!readOnly) scope.failKey(key, `"${source}": ${BIND_RW}`);
  checkProjectPath(scope, key, source);
  if (!target.startsWith('/')) scope.failKey(key, `"${target}" must be an absolute path in the container`);
  const ref = refOf(scope, key, source, ctx);
  if ('sha256' in ref) {
    store(ctx, 'file', uploadedBytes(scope, key, source, ref.sha256, ctx));
    return { target, kind: 'bind', blob: ref.sha256 };
  }
  if (!('tree' in ref)) return scope.failKey(key, `"${source}": ${ref.error}`);
  for (const [rel, sha] of Object.entries(ref.tree)) store(ctx, 'file', uploadedBytes(scope, key, `${source}/${rel}`, sha, ctx));
  return { target, kind: 'bind', tree: ref.tree };
}

/**
 * `x-drover: { secret_env: [NAME, …] }`: those `environment:` values are secrets. They leave
 * the environment (which every read shows) for `secret_environment` (name → secret id).
 */
export function takeSecretEnv(scope: Scope, names: unknown, environment: Record<string, string>, ctx: FileContext): Record<string, string> {
  const key = ['x-drover', 'secret_env'];
  const list = scope.shape(key, z.array(z.string()), names);
  const out: Record<string, string> = {};
  list.forEach((name, i) => {
    if (!Object.hasOwn(environment, name)) {
      scope.reportKey([...key, i], `"${name}" is not in the service's environment (nor its env_file)`);
      return;
    }
    out[name] = store(ctx, 'secret', Buffer.from(environment[name]!));
    delete environment[name];
  });
  return out;
}

/** A path of the project: relative, and not climbing out of the project's directory. */
function checkProjectPath(scope: Scope, key: PropertyKey[], path: string): void {
  if (path.startsWith('/') || path.startsWith('~')) scope.failKey(key, `"${path}": ${BIND_HOST}`);
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  let depth = 0;
  for (const p of parts) {
    depth += p === '..' ? -1 : 1;
    if (depth < 0) scope.failKey(key, `"${path}" is outside the project's directory; only files of the project travel with it`);
  }
}

function refOf(scope: Scope, key: PropertyKey[], path: string, ctx: FileContext): FileRef {
  if (ctx.refs === undefined) scope.failKey(key, `"${path.replace(/^env:/, '$')}" ${NO_CLI}`);
  const ref = ctx.refs[path];
  if (ref === undefined || ref === null) {
    scope.failKey(key, path.startsWith('env:') ? `variable "${path.slice(4)}" is not set on the deploying machine` : `"${path}": no such file or directory beside the Compose file`);
  }
  return ref;
}

function uploaded(scope: Scope, key: PropertyKey[], path: string, ctx: FileContext, what: 'file'): Uint8Array {
  const ref = refOf(scope, key, path, ctx);
  if ('error' in ref) scope.failKey(key, `"${path}": ${ref.error}`);
  if (!('sha256' in ref)) scope.failKey(key, `"${path}" is a directory; a ${what} source is one file`);
  return uploadedBytes(scope, key, path, ref.sha256, ctx);
}

function uploadedBytes(scope: Scope, key: PropertyKey[], path: string, sha256: string, ctx: FileContext): Uint8Array {
  const bytes = ctx.uploads.get(sha256);
  if (bytes === undefined) scope.failKey(key, `the content of "${path}" was not uploaded with the deploy`);
  return bytes;
}

function store(ctx: FileContext, kind: 'file' | 'secret', bytes: Uint8Array): string {
  const id = kind === 'secret' ? ctx.secretIdOf(bytes) : sha256Hex(bytes);
  ctx.contents.set(id, { kind, bytes });
  return id;
}

/**
 * A file mode. YAML 1.2 reads `0440` as the number 440, so a number whose digits are all
 * octal digits is read as written in octal (Compose files write modes in octal); "0440" as a
 * string is octal too; a number with an 8 or 9 in it is taken as decimal (288 = 0440).
 */
function readMode(scope: Scope, key: PropertyKey[], value: string | number): number {
  const text = String(value);
  const mode = /^0?o?[0-7]{1,4}$/.test(text) ? Number.parseInt(text.replace(/^0?o/, ''), 8) : /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(mode >= 0 && mode <= 0o7777)) scope.failKey(key, `"${text}" is not a file mode (octal, e.g. 0440)`);
  return mode;
}

function readId(scope: Scope, key: PropertyKey[], value: string | number): string {
  const text = String(value);
  if (!/^\d{1,10}$/.test(text)) scope.failKey(key, `"${text}" is not a numeric id`);
  return text;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

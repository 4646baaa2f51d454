/**
 * The files a Compose project ships with its deploy (docs/DESIGN.md §22), found and read on
 * the operator's machine: top-level `configs:`/`secrets:` with `file:` or `environment:`, and
 * read-only bind mounts of the project's files or small directories
 * (`./nginx.conf:/etc/nginx/nginx.conf:ro`). Pure: the caller passes a reader.
 *
 * Each path (as written) is named in the trailer by its content's SHA-256 (a directory: its
 * files' by relative path), and each content goes once in the deploy's uploads. Limits, so a
 * deploy stays a small request: a file at most 1 MiB; a directory at most 256 files and 1 MiB
 * in all; everything at most 8 MiB. A path over a limit is named with the reason in the trailer,
 * and the control service refuses it at its line in the file.
 */
import { createHash } from 'node:crypto';
import type { Lookup } from './compose-interpolate.ts';

export const MAX_FILE_BYTES = 1024 * 1024;
export const MAX_DIR_FILES = 256;
export const MAX_UPLOAD_BYTES = 8 * 1024 * 1024;

/** What a path of the project holds, as the CLI's reader found it. */
export type PathContent = { file: Uint8Array } | { dir: Record<string, Uint8Array> } | { error: string };

/** The trailer's entry for a path (control-service/deploy/compose-files.ts FileRef). */
export type FileRef = { sha256: string } | { tree: Record<string, string> } | { error: string };

export interface CollectedFiles {
  refs: Record<string, FileRef | null>;
  /** SHA-256 → content. */
  uploads: Map<string, Uint8Array>;
}

/**
 * Finds every path the Compose document ships and reads it with `readPath` (null: no such
 * path). `lookup` gives an `environment:` source's value.
 */
export async function collectFiles(compose: unknown, readPath: (path: string) => Promise<PathContent | null>, lookup: Lookup): Promise<CollectedFiles> {
  const out: CollectedFiles = { refs: {}, uploads: new Map() };
  let total = 0;
  const add = (bytes: Uint8Array): string | { error: string } => {
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (out.uploads.has(sha)) return sha;
    if (total + bytes.length > MAX_UPLOAD_BYTES) return { error: `the files of this deploy would pass ${mib(MAX_UPLOAD_BYTES)} in all; put large files in the image or a named volume` };
    total += bytes.length;
    out.uploads.set(sha, bytes);
    return sha;
  };
  for (const { path, env } of sourcesOf(compose)) {
    if (path in out.refs) continue;
    if (env) {
      const value = lookup(path.slice(4));
      if (value === undefined) out.refs[path] = null;
      else {
        const sha = add(Buffer.from(value));
        out.refs[path] = typeof sha === 'string' ? { sha256: sha } : sha;
      }
      continue;
    }
    const content = await readPath(path);
    out.refs[path] = content === null ? null : refOf(content, add);
  }
  return out;
}

function refOf(content: PathContent, add: (bytes: Uint8Array) => string | { error: string }): FileRef {
  if ('error' in content) return content;
  if ('file' in content) {
    if (content.file.length > MAX_FILE_BYTES) return { error: `is ${mib(content.file.length)}; a file that travels with the project is at most ${mib(MAX_FILE_BYTES)} (put it in the image or a named volume)` };
    const sha = add(content.file);
    return typeof sha === 'string' ? { sha256: sha } : sha;
  }
  const entries = Object.entries(content.dir);
  const size = entries.reduce((n, [, b]) => n + b.length, 0);
  if (entries.length > MAX_DIR_FILES || size > MAX_FILE_BYTES) {
    return { error: `is a directory of ${entries.length} files and ${mib(size)}; one that travels with the project holds at most ${MAX_DIR_FILES} files and ${mib(MAX_FILE_BYTES)} (put it in the image or a named volume)` };
  }
  const tree: Record<string, string> = {};
  for (const [rel, bytes] of entries.sort(([a], [b]) => a.localeCompare(b))) {
    const sha = add(bytes);
    if (typeof sha !== 'string') return sha;
    tree[rel] = sha;
  }
  return { tree };
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(bytes % (1024 * 1024) === 0 ? 0 : 1)} MiB`;
}

/** The paths a document ships: `file:` and `env:NAME` sources of configs and secrets, and read-only project binds. */
export function sourcesOf(compose: unknown): { path: string; env: boolean }[] {
  const out: { path: string; env: boolean }[] = [];
  const top = (compose ?? {}) as Record<string, unknown>;
  for (const kind of ['configs', 'secrets']) {
    const entries = top[kind];
    if (entries === null || typeof entries !== 'object') continue;
    for (const e of Object.values(entries as Record<string, unknown>)) {
      const spec = (e ?? {}) as { file?: unknown; environment?: unknown };
      if (typeof spec.file === 'string') out.push({ path: spec.file, env: false });
      if (typeof spec.environment === 'string') out.push({ path: `env:${spec.environment}`, env: true });
    }
  }
  const services = top.services;
  if (services === null || typeof services !== 'object') return out;
  for (const s of Object.values(services as Record<string, unknown>)) {
    const volumes = (s as { volumes?: unknown } | null)?.volumes;
    if (!Array.isArray(volumes)) continue;
    for (const v of volumes) {
      if (typeof v === 'string') {
        const parts = v.split(':');
        if (parts.length === 3 && parts[0]!.startsWith('.') && parts[2]!.split(',').includes('ro')) out.push({ path: parts[0]!, env: false });
      } else if (v !== null && typeof v === 'object') {
        const long = v as { type?: unknown; source?: unknown; read_only?: unknown };
        if (long.type === 'bind' && long.read_only === true && typeof long.source === 'string' && !long.source.startsWith('/')) out.push({ path: long.source, env: false });
      }
    }
  }
  return out;
}

import { z } from 'zod';
import { AppName } from '#common/model.ts';
import { resolveExtends } from './compose-extends.ts';
import { FileRef, readTopFiles, type FileContext } from './compose-files.ts';
import { readComposeService, type ServiceContext } from './compose-service.ts';
import { readTopVolumes } from './compose-volumes.ts';
import { readTopNetworks } from './compose-networks.ts';
import type { FileDraft, ServiceDraft } from './draft.ts';
import { unescapeDollars } from './interpolation.ts';
import { Scope } from './scope.ts';
import type { YamlSource } from './yaml-source.ts';
import { didYouMean } from '#common/did-you-mean.ts';

const TOP_REASONS: Record<string, string> = {
  include: 'write the services into this file',
};

/**
 * What the drover CLI appends to a Compose file it has interpolated (cli/compose-env.ts):
 * `x-drover-cli: { interpolated: true, profiles: [...], env_files: { path: {VAR: value} | null } }`.
 * Appended last, so every line and column of the operator's text stays where it was.
 */
export const CLI_TRAILER_KEY = 'x-drover-cli';
const CliTrailer = z
  .object({
    interpolated: z.literal(true),
    profiles: z.array(z.string()).default([]),
    env_files: z.record(z.string(), z.record(z.string(), z.string()).nullable()).default({}),
    /** Paths (and `env:NAME` sources) of configs, secrets and project binds → their content (compose-files.ts). */
    files: z.record(z.string(), FileRef.nullable()).default({}),
  })
  .strict();

/** A Compose file: `services:`, optional `version:` (informational), `name:`, `volumes:`, `x-*`. */
const ComposeTop = z
  .object({
    version: z.union([z.string(), z.number()]).optional(),
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lower-case letters, digits, "_" or "-"').optional(),
    services: z.record(z.string(), z.unknown()),
    volumes: z.unknown().optional(),
  })
  .catchall(z.unknown());

/** Without a deploy's uploads (a file read on its own): no content is there, and secrets get no id. */
const NO_UPLOADS: Pick<FileContext, 'uploads' | 'secretIdOf'> = {
  uploads: new Map(),
  secretIdOf: () => {
    throw new Error('no secret ids without the control service');
  },
};

/**
 * Reads a Compose file (`services:` at the top). Top-level `x-*` keys are allowed and not
 * read (they exist to hold YAML anchors); any other unknown top-level key is refused.
 *
 * `$` is handled in one place: the drover CLI interpolates (`$VAR`, `${VAR:-d}`, … and `$$`)
 * and says so in its trailer, after which every `$` here is literal. A file that arrives
 * without the trailer (straight through the API) is read as before: `$$` is a `$`, and a
 * variable is refused, since no shell is there to give it a value.
 */
export function readComposeFile(src: YamlSource, top: Record<string, unknown>, uploads: Pick<FileContext, 'uploads' | 'secretIdOf'> = NO_UPLOADS): FileDraft {
  const scope = new Scope(src, []);
  const known = ['version', 'name', 'services', 'volumes', 'networks', 'configs', 'secrets'];
  for (const key of Object.keys(top)) {
    if (key.startsWith('x-') || known.includes(key)) continue;
    const meant = didYouMean(key, known);
    const reason = TOP_REASONS[key] ?? (meant === undefined ? undefined : `did you mean "${meant}"?`);
    scope.report([key], `unsupported top-level key "${key}"${reason ? `: ${reason}` : ''}`);
  }
  const trailer = top[CLI_TRAILER_KEY] === undefined ? undefined : scope.attempt(() => scope.shape([CLI_TRAILER_KEY], CliTrailer, top[CLI_TRAILER_KEY]), undefined);
  const dollars = (value: unknown, path: PropertyKey[], at: Scope = scope): unknown => (trailer ? value : unescapeDollars(at, value, path));
  const spec = scope.shape([], ComposeTop, top);
  const volumes = scope.attempt(() => readTopVolumes(scope, dollars(spec.volumes ?? null, ['volumes'])), new Map());
  const networks = scope.attempt(() => readTopNetworks(scope, dollars(top.networks, ['networks'])), new Set(['default']));
  const files: FileContext = { ...uploads, contents: new Map(), ...(trailer ? { refs: trailer.files } : {}) };
  const tops = {
    configs: top.configs === undefined ? new Map<string, string | null>() : scope.attempt(() => readTopFiles(scope, 'configs', dollars(top.configs, ['configs']), files), new Map<string, string | null>()),
    secrets: top.secrets === undefined ? new Map<string, string | null>() : scope.attempt(() => readTopFiles(scope, 'secrets', dollars(top.secrets, ['secrets']), files), new Map<string, string | null>()),
  };
  const context: ServiceContext = { ...(trailer ? { interpolated: true, envFiles: trailer.env_files } : {}), networks, files, top: tops };
  const profiles = new Set(trailer?.profiles ?? []);
  const record = spec.services as Record<string, unknown>;
  const inactive = new Set<string>();
  const services: ServiceDraft[] = [];
  for (const [name, raw] of Object.entries(record)) {
    const serviceScope = new Scope(src, ['services', name], name);
    const service = serviceScope.attempt(() => {
      const active = activeByProfile(serviceScope, raw, profiles);
      if (!active) {
        inactive.add(name);
        return null;
      }
      const merged = resolveExtends(serviceScope, record, name);
      return readService(serviceScope, name, dollars(merged, [], serviceScope), context);
    }, null);
    if (service !== null) services.push(service);
  }
  if (Object.keys(record).length === 0) scope.reportKey(['services'], 'declares no service');
  else if (services.length === 0 && inactive.size > 0 && src.problems.length === 0) {
    scope.reportKey(['services'], `no service is active: each has "profiles:"; name one with --profile (or COMPOSE_PROFILES)`);
  }
  const draft: FileDraft = { services, volumes, volumesMustBeDeclared: true, inactive, contents: files.contents };
  if (spec.name !== undefined) draft.name = spec.name;
  return draft;
}

/** Compose: a service with `profiles:` runs only when one of them is active (`--profile`). */
function activeByProfile(scope: Scope, raw: unknown, active: ReadonlySet<string>): boolean {
  if (raw === null || typeof raw !== 'object' || !('profiles' in raw)) return true;
  const profiles = scope.shape(['profiles'], z.array(z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/)), raw.profiles);
  return profiles.some((p) => active.has(p));
}

/**
 * Reads a Fig (Compose v1) file: the services are the top-level keys. It is recognised when
 * a top-level entry is a mapping with `image` or `build` (Flocker's rule). Named volumes need
 * no declaration there, as in Compose v1.
 */
export function readFigFile(src: YamlSource, top: Record<string, unknown>): FileDraft {
  const services: ServiceDraft[] = [];
  for (const [name, raw] of Object.entries(top)) {
    const scope = new Scope(src, [name], name);
    const service = scope.attempt(() => readService(scope, name, unescapeDollars(scope, raw)), null);
    if (service !== null) services.push(service);
  }
  return { services, volumes: new Map(), volumesMustBeDeclared: false, inactive: new Set() };
}

export function looksLikeFig(top: Record<string, unknown>): boolean {
  return Object.values(top).some((v) => v !== null && typeof v === 'object' && !Array.isArray(v) && ('image' in v || 'build' in v));
}

function readService(scope: Scope, name: string, raw: unknown, context: ServiceContext = {}): ServiceDraft | null {
  if (!AppName.safeParse(name).success) {
    scope.report([], `"${name}" is not a service name drover can use (a letter or digit, then letters, digits, "_", "." or "-"; at most 63)`);
  }
  return readComposeService(scope, name, raw, context);
}
